/**
 * better-sqlite3 (v12) with the few typings the run store needs: the package ships no
 * types and is CommonJS, so it is loaded with `require`.
 */
import { createRequire } from "node:module";

export type SqlValue = number | bigint | string | Buffer | Uint8Array | null;
export type SqlParams = Record<string, SqlValue> | SqlValue[];

export interface Statement {
  run(...params: SqlParams[]): { changes: number; lastInsertRowid: number | bigint };
  get(...params: SqlParams[]): Record<string, unknown> | undefined;
  all(...params: SqlParams[]): Record<string, unknown>[];
}

export interface Database {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  pragma(sql: string, opts?: { simple?: boolean }): unknown;
  transaction<A extends unknown[], R>(
    fn: (...args: A) => R,
  ): ((...args: A) => R) & { immediate: (...args: A) => R };
  close(): void;
  readonly open: boolean;
}

type DatabaseCtor = new (
  path: string,
  opts?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number },
) => Database;

let ctor: DatabaseCtor | undefined;

/** Opens (or creates) a database file; `timeout` ms to wait on another writer's lock. */
export function openDatabase(
  path: string,
  opts: { readonly?: boolean; fileMustExist?: boolean } = {},
): Database {
  if (!ctor) {
    try {
      ctor = createRequire(import.meta.url)("better-sqlite3") as DatabaseCtor;
    } catch (e) {
      throw new Error(
        `the run store needs better-sqlite3 12 (npm install better-sqlite3@12): ${(e as Error).message}`,
      );
    }
  }
  return new ctor(path, {
    readonly: opts.readonly === true,
    fileMustExist: opts.fileMustExist === true,
    timeout: 10_000,
  });
}
