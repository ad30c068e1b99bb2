/**
 * A Map of at most `max` entries, the oldest out first: the caches of cookie values and of key
 * hashes. A ring of keys names the oldest, so a full cache replaces an entry without asking the
 * Map for its first key (an iterator per insert, measured on the new-session path).
 */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>();
  private readonly ring: (K | undefined)[];
  private next = 0;

  constructor(private readonly max: number) {
    this.ring = new Array<K | undefined>(max);
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  get size(): number {
    return this.map.size;
  }

  set(key: K, value: V): void {
    if (this.map.has(key)) {
      this.map.set(key, value);
      return;
    }
    const oldest = this.ring[this.next];
    if (oldest !== undefined) this.map.delete(oldest);
    this.ring[this.next] = key;
    this.next = (this.next + 1) % this.max;
    this.map.set(key, value);
  }
}
