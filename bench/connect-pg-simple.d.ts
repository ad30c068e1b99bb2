// connect-pg-simple ships no types; bench/ uses only its store constructor.
declare module 'connect-pg-simple' {
  import type { Store } from 'express-session';
  function connectPgSimple(session: unknown): new (options: { pool: unknown; tableName: string; createTableIfMissing?: boolean; pruneSessionInterval?: number | false }) => Store;
  export = connectPgSimple;
}
