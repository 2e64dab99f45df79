// Counts the D1 round trips one request makes (a statement's first/all/run/raw,
// a batch, an exec), so page loads can be measured and budgeted: the console
// reports the count in `X-D1-Round-Trips` and `npm run bench:pages` reads it.

export interface MeteredD1 {
  db: D1Database;
  roundTrips(): number;
}

const STATEMENT_CALLS = new Set(["first", "all", "run", "raw"]);

export function meterD1(db: D1Database): MeteredD1 {
  let roundTrips = 0;
  const count = <T>(result: T): T => {
    roundTrips += 1;
    return result;
  };
  const statement = (inner: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(inner, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        if (key === "bind") return (...args: unknown[]) => statement(value.apply(target, args));
        if (typeof key === "string" && STATEMENT_CALLS.has(key)) return (...args: unknown[]) => count(value.apply(target, args));
        return value.bind(target);
      },
    });
  const database = <D extends object>(inner: D): D =>
    new Proxy(inner, {
      get(target, key, receiver) {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        if (key === "prepare") return (query: string) => statement(value.call(target, query));
        if (key === "batch" || key === "exec") return (...args: unknown[]) => count(value.apply(target, args));
        if (key === "withSession") return (...args: unknown[]) => database(value.apply(target, args));
        return value.bind(target);
      },
    });
  return { db: database(db), roundTrips: () => roundTrips };
}
