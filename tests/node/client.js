// node-postgres against the server at PGHOST:PGPORT (a pygwire relay or
// server in the tests): a query, a parameterised query, and transactions,
// one committed and one rolled back.  Prints what it read as one JSON line.
"use strict";
const { Client } = require("pg");

async function main() {
  const client = new Client({
    host: process.env.PGHOST,
    port: Number(process.env.PGPORT),
    user: process.env.PGUSER,
    password: process.env.PGPASSWORD || undefined,
    database: process.env.PGDATABASE || "postgres",
  });
  await client.connect();
  const out = {};
  out.query = (await client.query("select 1 as one, 'two' as two")).rows;
  out.params = (await client.query("select $1::int4 + 1 as n, $2::text as t", [41, "x"])).rows;
  await client.query("create temp table node_t (i int)");
  await client.query("begin");
  await client.query("insert into node_t values ($1), ($2)", [1, 2]);
  await client.query("commit");
  await client.query("begin");
  await client.query("insert into node_t values (3)");
  try {
    await client.query("select * from no_such_table");
  } catch (err) {
    out.error = err.code;
  }
  await client.query("rollback");
  out.rows = (await client.query("select i from node_t order by i")).rows.map((r) => r.i);
  await client.end();
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
