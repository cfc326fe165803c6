"""The market's books audited at the end of a test (test_market*.py), by
scripts/market_audit.py against the baseline of an empty market whose
wallets the test funded: no money made or lost, and every request's wallet
rows and trades exactly what its stored answer says — so a lost or a
duplicated transaction shows."""

import market_audit

totals = market_audit.money


def audit(test, funded, trade_log=None):
    """Fails `test` with every problem found unless the books balance.
    `funded`: {character_id: money put into its wallet outside the market}.
    Returns how many requests were checked."""
    result = market_audit.check(market_audit.funded(funded), trade_log)
    if not result.ok:
        test.fail("the market's books do not balance (%d problems):\n%s"
                  % (result.counts["problems"], "\n".join(result.problems)))
    return result.counts["requests"]
