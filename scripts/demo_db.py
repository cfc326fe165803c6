"""The database from tasklets: run with `bash ops/run.sh` (it starts a private
MariaDB and sets SHARD_DB_*), or against your own server with SHARD_DB_* set.

Twenty tasklets each wait for a half-second query at once; a ticker tasklet
keeps running meanwhile; a transaction moves money and one that fails rolls back.
"""
import time

import db
import stackless


def main():
    db.connect()
    db.execute("CREATE TABLE IF NOT EXISTS demo_wallet (id INT PRIMARY KEY, balance BIGINT NOT NULL)")
    db.execute("REPLACE INTO demo_wallet VALUES (?, ?), (?, ?)", 1, 100, 2, 0)

    ticks = [0]

    def ticker():  # a game tasklet: keeps running while the queries wait
        while ticks[0] < 1000:
            ticks[0] += 1
            stackless.schedule()

    stackless.tasklet(ticker)()
    start = time.monotonic()
    for _ in range(20):
        stackless.tasklet(db.query)("SELECT SLEEP(0.5)")
    stackless.run()  # until every tasklet is done: waiting idles for the completions
    print("20 queries of 0.5 s on a pool of %d: %.2f s; the ticker ran %d times meanwhile"
          % (db.stats()["size"], time.monotonic() - start, ticks[0]))

    with db.transaction() as tx:
        tx.execute("UPDATE demo_wallet SET balance = balance - ? WHERE id = ?", 30, 1)
        tx.execute("UPDATE demo_wallet SET balance = balance + ? WHERE id = ?", 30, 2)
    try:
        with db.transaction() as tx:
            tx.execute("UPDATE demo_wallet SET balance = balance - ? WHERE id = ?", 1000, 1)
            raise ValueError("insufficient funds")
    except ValueError:
        pass
    print("balances after one transfer and one rolled back:", db.query("SELECT id, balance FROM demo_wallet ORDER BY id"))
    db.execute("DROP TABLE demo_wallet")
    print("pool:", db.stats())
    db.close()


if __name__ == "__main__":
    main()
