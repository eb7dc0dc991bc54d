// Timers a lab component owns, so that close() can cancel every pending one (a delayed reset or
// reply must not fire after the lab stopped).
export class Timers {
  private readonly pending = new Set<NodeJS.Timeout>();
  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.pending.delete(t);
      fn();
    }, ms);
    this.pending.add(t);
  }
  clear(): void {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
  }
}
