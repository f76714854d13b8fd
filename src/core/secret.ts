import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A value that must never appear in logs, manifests, reports or errors. It redacts itself in
 * String(), JSON.stringify() and util.inspect(); only `reveal()` gives the value, at the point of use.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export const revealOptional = (s: Secret | undefined): string | undefined => s?.reveal();
