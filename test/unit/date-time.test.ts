import { describe, expect, it } from "vitest";
import { isoDateTime } from "../../src/schema/date-time.ts";

describe("isoDateTime", () => {
  it("is toISOString for any date, one after another on the same day and on others", () => {
    const edges = [
      0,
      -1,
      1,
      Date.UTC(2000, 1, 29, 23, 59, 59, 999),
      Date.UTC(2000, 2, 1),
      Date.UTC(1900, 1, 28, 12),
      Date.UTC(1900, 2, 1),
      Date.UTC(2100, 1, 28, 23, 59, 59, 999),
      Date.UTC(2024, 11, 31, 23, 59, 59, 999),
      Date.UTC(2025, 0, 1),
      Date.UTC(1000, 0, 1),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(999, 11, 31, 23, 59, 59, 999),
      Date.UTC(10000, 0, 1),
      Date.UTC(-5, 5, 5),
      Date.UTC(1969, 11, 31, 23, 59, 59, 1),
      8.64e15,
      -8.64e15,
    ];
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const spread = Array.from({ length: 20_000 }, () => Math.floor((random() - 0.4) * 2e13));
    // Several times of one day in a row (the cached date part), then another day's.
    const sameDay = Array.from({ length: 50 }, (_, i) => Date.UTC(2026, 11, 2) + i * 1_234_567);
    for (const time of [...edges, ...spread, ...sameDay, ...edges]) {
      const date = new Date(time);
      expect(isoDateTime(date), String(time)).toBe(date.toISOString());
    }
  });

  it("refuses an invalid date as toISOString does", () => {
    expect(() => isoDateTime(new Date(Number.NaN))).toThrow(RangeError);
  });
});
