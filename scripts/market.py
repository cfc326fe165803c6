"""The market service (docs/market.md): buy and sell orders per region,
matched in price-time priority, paid between wallets, each request in one
database transaction and idempotent on its client-chosen request_id.

A sol serves it to the sessions in its systems; the caller is the session's
character, and the market is the region of the session's solar system
(solar_systems.region_id). The work is market_ledger's. Once a request
committed, the owners of the orders it took hear of each trade, wherever
they play (node.notifier, docs/services.md): service "market", event
"trade", args [order_id, type_id, quantity, price].
"""

import logging

import db
import live_settings
import sol_sessions
from rpc_services import exposed

import market_ledger

log = logging.getLogger("shard.market")


class Market:
    service_name = "market"

    def __init__(self, node):
        self.node = node
        # solar_system_id -> region_id: read once per system, not once per
        # request; forgotten whenever solar_systems changes (the live
        # settings' content versions, docs/database.md).
        self.regions = {}
        live_settings.on_table_change("solar_systems", lambda table, version: self.regions.clear())

    @staticmethod
    def _character():
        character = sol_sessions.current().attributes.get("character_id")
        if not isinstance(character, int):
            raise LookupError("no character selected")
        return character

    def _where(self):
        """(region_id, solar_system_id) of the caller's session."""
        system = sol_sessions.current().attributes.get("solar_system_id")
        region = self.regions.get(system)
        if region is None and isinstance(system, int):
            rows = db.query("SELECT region_id FROM solar_systems WHERE id = ?", system)
            region = rows[0][0] if rows else None
            if region is not None:  # a system in no region is asked again: it may get one
                self.regions[system] = region
        if region is None:
            raise LookupError("solar system %s belongs to no region: it has no market" % (system,))
        return region, system

    @exposed(role="player")
    def balance(self):
        """The wallet's balance, in hundredths of an ISK."""
        return market_ledger.balance(self._character())

    @exposed(role="player")
    def place(self, side, type_id, quantity, price, request_id):
        """A buy or sell order in the session's region: {"order_id" (None when
        nothing rests), "filled", "remaining", "trades": [{"price", "quantity"}]}.
        The same request_id again returns the first answer and changes nothing."""
        character = self._character()
        market_ledger.check_order(side, type_id, quantity, price)  # a bad order is refused before any query
        region, system = self._where()
        result = market_ledger.place(character, region, system, side, type_id, quantity, price, request_id)
        self._tell(result.notices)
        return result.answer

    def _tell(self, notices):
        """At most once: a counterparty offline, or a database error finding
        where it plays, loses the notification, never the trade (committed)."""
        for notice in notices:
            try:
                self.node.notifier.to_characters([notice.character_id], "market", "trade", notice.order_id,
                                                 notice.type_id, notice.quantity, notice.price)
            except db.Error as e:
                log.warning("market: trade of order %d not notified to character %d: %s", notice.order_id,
                            notice.character_id, e)

    @exposed(role="player")
    def cancel(self, order_id, request_id):
        """Cancels one's own open order: {"order_id", "cancelled": quantity}."""
        return market_ledger.cancel(self._character(), order_id, request_id).answer

    @exposed(role="player")
    def book(self, type_id):
        """{"buy": [[price, quantity], ...], "sell": [...]} of the session's region."""
        market_ledger.check_type(type_id)
        return market_ledger.book(self._where()[0], type_id)

    @exposed(role="player")
    def my_orders(self):
        return market_ledger.my_orders(self._character())

    @exposed(role="player")
    def history(self, limit=50):
        """The wallet's transactions, newest first."""
        return market_ledger.history(self._character(), limit)


def register(services, node):
    services.register(Market(node))
