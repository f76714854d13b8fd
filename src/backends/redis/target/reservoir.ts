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

  /** Items offered so far: the population the sample was drawn from. */
  get offered(): number {
    return this.seen;
  }
}
