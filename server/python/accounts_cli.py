"""Operators' account tool, on the database of the SHARD_DB_* settings
(docs/database.md), schema migrated first:

  SHARD_DB_HOST=... build/bin/shard python server/python/accounts_cli.py create NAME < password-file
  ... accounts_cli.py passwd NAME < password-file
  ... accounts_cli.py check NAME < password-file        (exit 0: it matches)

The password comes from standard input (its first line), never from the
command line, where `ps` would show it. Exit status: 0 done, 1 refused (the
message says why), 2 bad usage.
"""

import argparse
import sys

import db
import db_migrate

import accounts


def main(argv):
    parser = argparse.ArgumentParser(prog="accounts_cli.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("create", "passwd", "check"))
    parser.add_argument("name")
    options = parser.parse_args(argv)
    password = sys.stdin.readline().rstrip("\r\n")
    db.connect(pool_size=1)
    try:
        db_migrate.migrate()
        if options.command == "create":
            print("account %s created: id %d" % (options.name, accounts.create(options.name, password)))
        elif options.command == "passwd":
            accounts.set_password(options.name, password)
            print("password of %s changed" % options.name)
        else:
            account_id, why = accounts.check(options.name, password)
            if account_id is None:
                print("%s: %s" % (options.name, why), file=sys.stderr)
                return 1
            print("%s: password matches (account %d)" % (options.name, account_id))
    except accounts.AccountError as e:
        print("accounts_cli.py %s: %s" % (options.command, e), file=sys.stderr)
        return 1
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
