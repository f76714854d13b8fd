/**
 * Uniform random sample of a stream of unknown length (Vitter's algorithm R): after offering n items, each
 * was kept with probability size/n. Memory is `size` items whatever n is.
 */
export class Reservoir<T> {
  readonly items: T[] = [];
  private seen = 0;

  constructor(private readonly size: number) {}

  offer(item: T): void {
    this.offerLazy(() => item);
  }

  /** Like offer(), but builds the item only when it is kept (e.g. copies of large buffers). */
  offerLazy(make: () => T): void {
    this.seen++;
    if (this.items.length < this.size) {
      this.items.push(make());
      return;
    }
    const j = Math.floor(Math.random() * this.seen);
    if (j < this.size) this.items[j] = make();
  }

  /**
   * offerLazy() in two steps, for an item that is complete only later: counts one offer and returns the slot
   * to put() it in, or -1 when it is not kept. put() must come before the next claim().
   */
  claim(): number {
    this.seen++;
    if (this.items.length < this.size) return this.items.length;
    const j = Math.floor(Math.random() * this.seen);
    return j < this.size ? j : -1;
  }

  put(slot: number, item: T): void {
    this.items[slot] = item;
  }

  /** Items offered so far: the population the sample was drawn from. */
  get offered(): number {
    return this.seen;
  }
}
