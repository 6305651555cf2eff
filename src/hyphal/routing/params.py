"""Every routing parameter in one frozen dataclass; the daemon and the simulator both import it.

Times are seconds, metrics are u16 in units of ``metric_unit`` seconds (100 µs) of one-way
latency. Each field's comment says what it means and why its default.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.wire.control import MAX_PAYLOAD_SIZE


@dataclass(frozen=True)
class RoutingParams:
    # --- neighbours -------------------------------------------------------------------------
    # Hello period. 4 probes a second cost ~11 bytes each and give the RTT estimator enough
    # samples to converge within a couple of seconds and the dead timer below something to count.
    hello_interval: float = 0.25
    # Each hello is sent after hello_interval * (1 - u * hello_jitter), u uniform in [0, 1), so
    # thousands of routers started together do not tick in lockstep; never later than the interval.
    hello_jitter: float = 0.2
    # No control frame at all from a neighbour for this long -> NeighbourDead. About 4 missed
    # hellos: sub-second failover on a silent link, yet two lost hellos in a row do not kill it.
    dead_interval: float = 1.0
    # EWMA gain for the displayed RTT (TCP's SRTT uses 1/8). The first sample is taken as is.
    rtt_alpha: float = 0.125
    # The link cost follows the minimum of this many recent RTT samples (8 hellos = 2 s):
    # queueing behind a burst of control traffic (a full dump) only adds delay and must not move
    # routes, while a real latency increase is adopted once it has lasted the whole window.
    rtt_window: int = 8
    # Samples above this (stale IHUs, clock wraps) are discarded.
    max_rtt_sample: float = 10.0

    # --- metric -----------------------------------------------------------------------------
    # One metric unit is 100 µs of one-way latency: u16 then spans 6.5 s, plenty for any path.
    metric_unit: float = 0.0001
    # Every hop costs at least 10 units (1 ms), so hop count always matters and a LAN mesh does not
    # route over many "free" hops.
    cost_floor: int = 10
    # Link cost is only changed when the new value differs from the current one by more than
    # max(cost_damping_abs, cost_damping_rel * current): jitter of a few hundred µs or a few
    # percent does not ripple through the network as metric changes.
    cost_damping_abs: int = 3
    cost_damping_rel: float = 0.1

    # --- route selection --------------------------------------------------------------------
    # Switch the selected route only if the best candidate is better by more than
    # max(hysteresis_abs, hysteresis_rel * current metric). 3 % keeps steady-state stretch well
    # below 1.05 while stopping flaps between near-equal paths; 5 units = 0.5 ms.
    hysteresis_abs: int = 5
    hysteresis_rel: float = 0.03
    # Send a triggered update when the selected metric moved by more than
    # max(significant_change_abs, significant_change_rel * last advertised) since the last one.
    # This must not exceed the hysteresis above: a neighbour switches on a 3 % difference, so a
    # suppressed change of a few percent is what the next periodic dump reveals, and routes then
    # move 2-5 s after an event instead of with it (geo 300 nodes, busiest node failure: 6-8 s
    # at 10 units / 10 %, 1.2 s at 5 units / 0). Link costs are damped and min-filtered
    # (neighbour.py), so this costs few extra updates.
    significant_change_abs: int = 5
    significant_change_rel: float = 0.0

    # --- updates ----------------------------------------------------------------------------
    # Triggered updates other than retractions are held this long (from the first one held)
    # and then sent together: during a cold start or after a failure a prefix's route often
    # changes several times within a few tens of milliseconds (path exploration), and each
    # neighbour then gets one update instead of one per step. Retractions go at once (the loss
    # must spread before anyone relies on it). Measured on geo 100, seed 1 (docs/routing.md):
    # cold-start update TLVs 2.01x -> 1.45x the minimum at degree 3, 3.44x -> 2.31x at degree 4,
    # for up to ~30 ms more per hop of propagation. Holding first routes matters: sending them
    # at once only reached 1.98x / 3.12x. 0 sends everything at once (the old behaviour).
    update_coalesce: float = 0.03
    # Updates that end a starvation (a newer seqno, a route found again) skip that window, but
    # not each on its own: one such flush goes out at once, and what follows within this time
    # waits for the next, so a burst reaches each neighbour as one packet per pace instead of
    # one per update. Geo 1000 nodes, degree 4, a random node's death (594 origins bump their
    # seqno): sent each at once (pace 0), the window carried 5.8x the control messages and took
    # 2.8x the CPU of holding them for update_coalesce; paced at 5 ms, 1.5x and 1.3x, with the
    # same convergence (docs/routing.md).
    urgent_update_pace: float = 0.005
    # A prefix we have never advertised (new to us, not one found again after a loss) may be
    # held this long before its first advertisement, so its routes can stop improving first:
    # most of a cold start's excess updates are re-advertisements of improved routes. Measured
    # on geo 100, seed 1 (bench/cold_start_tlvs.py --first-hold, docs/scaling.md): at 0.1 s
    # the cold start sends 1.12x / 1.30x / 1.46x the minimum update TLVs at degree 3 / 4 / 6
    # (1.45x / 2.31x / 2.63x at 0) and converges within 2.1 / 1.6 / 1.4 s (1.2 / 1.0 / 1.0 s
    # at 0); failover does not use it. Off until its cost on joins is measured in the
    # namespace tests: each hop adds up to this much before a new node's prefix is known
    # beyond it.
    first_update_hold: float = 0.0
    # Periodic full-table update to every neighbour. Triggered updates carry every real change,
    # so this only repairs losses and refreshes expiry; 30 s keeps background load modest.
    update_interval: float = 30.0
    # The periodic update fires after update_interval * (1 - u * update_jitter).
    update_jitter: float = 0.1
    # A route not refreshed for route_expiry_factor x its advertised interval expires
    # (RFC 8966: 3.5, i.e. three lost periodic updates plus slack).
    route_expiry_factor: float = 3.5
    # Advertised intervals are clamped to this, bounding how long a neighbour can pin a route
    # (and keeping every route's lifetime well below source_gc_time, which loop freedom needs).
    max_advertised_interval: float = 120.0
    # A prefix whose selected route was lost is remembered for this long: its retraction is
    # repeated in full dumps and a late stale update cannot resurrect it silently.
    retraction_hold: float = 6.0
    # Upper bound on UPDATE/TLV bytes in one control payload; TLVs are batched up to this size.
    # Fits easily in one link record; lower it for datagram links.
    max_payload_size: int = 8192

    # --- sources (feasibility distances) -----------------------------------------------------
    # Feasibility distance entries unused this long are dropped (must exceed the longest route
    # lifetime, route_expiry_factor * max_advertised_interval = 420 s).
    source_gc_time: float = 1800.0
    # How often the source table is swept (an O(n) pass, so rarely).
    source_sweep_interval: float = 60.0

    # --- seqno requests ---------------------------------------------------------------------
    # Hop count a new seqno request starts with (RFC 8966 suggests 64); forwarded while > 1.
    seqno_request_hops: int = 64
    # The same request (prefix, router id, seqno) is not re-sent to a peer within this time; a
    # node still starved for a prefix re-sends it this often (a request lost on a link that died
    # silently would otherwise never be answered), at most seqno_request_retries times.
    seqno_request_resend: float = 1.0
    seqno_request_retries: int = 3
    # A received request for the same (prefix, router id, seqno) is forwarded to the same
    # neighbour once per this time (a copy that would go another way goes at once). It only
    # merges copies arriving over several paths at once, so it is shorter than
    # seqno_request_resend: a retry must get through the relays that forwarded the lost copy.
    seqno_request_dedupe: float = 0.5
    # Forwarding a neighbour's seqno requests costs a token from that neighbour's bucket (this
    # many a second, at most seqno_forward_burst saved up); requests beyond it are dropped and
    # counted. The burst covers a neighbour whose lost link starved a whole table at once.
    seqno_forward_rate: float = 256.0
    seqno_forward_burst: int = 1024
    # Per neighbour: TLVs processed (tlv_rate a second, tlv_burst saved up; the burst covers a
    # full dump of a full table twice) and replies sent on its behalf (an IHU per hello, our own
    # announcement for a request naming a stale router id). Excess is dropped and counted.
    tlv_rate: float = 8192.0
    tlv_burst: int = 131072
    reply_rate: float = 16.0
    reply_burst: int = 32
    # Per neighbour: seqno requests answered with an update for a route we hold (answer_rate a
    # second, answer_burst saved up: a neighbour that lost a link may ask for its whole table).
    answer_rate: float = 512.0
    answer_burst: int = 4096
    # The origin's seqno bumps are rate-limited by a token bucket: one token per
    # seqno_bump_min_interval, at most seqno_bump_burst saved up. A bump is re-signed and floods
    # the network, so a sustained stream of requests costs at most one flood a second, while a few
    # failures in quick succession are each repaired at once. A request that finds the bucket
    # empty is served as soon as a token arrives.
    seqno_bump_min_interval: float = 1.0
    seqno_bump_burst: int = 3

    # --- announcement freshness ---------------------------------------------------------------
    # Every announcement signs the origin's wall-clock time ("issued", Unix seconds). A receiver
    # refuses one issued more than announcement_lifetime + max_clock_skew ago or more than
    # max_clock_skew in the future, and lets a route expire when its announcement does, so a
    # recorded announcement of a dead node stops working after at most lifetime + skew (65 min).
    # The origin re-signs (with a seqno bump, which floods at once) every announcement_refresh,
    # a quarter of the lifetime: three refreshes may be lost before its routes lapse.
    announcement_lifetime: float = 3600.0
    announcement_refresh: float = 900.0
    # Wall clocks of any two nodes may differ by this much (NTP keeps them within a second; 5 min
    # tolerates a host without NTP for weeks). A node whose clock is off by more is cut off: see
    # docs/routing.md.
    max_clock_skew: float = 300.0

    # --- route audit (routing/audit.py) ------------------------------------------------------
    # Every audit_interval, up to audit_probes_per_round destinations used within audit_use_window
    # get one end-to-end probe each (the node sends it; a few hundred bytes a second at most);
    # at most audit_max_tracked destinations are remembered (least recently used dropped).
    audit_interval: float = 1.0
    audit_probes_per_round: int = 4
    audit_use_window: float = 30.0
    audit_max_tracked: int = 1024
    # A destination is probed again only after audit_probe_every; a probe unanswered after
    # audit_timeout counts as lost.
    audit_probe_every: float = 2.0
    audit_timeout: float = 2.0
    # A sample is bad when RTT/2 exceeds audit_slack_rel x the advertised one-way metric plus
    # audit_slack_abs (queueing, the far end's own processing, asymmetric return paths), or the
    # probe was lost. audit_strikes bad samples in a row through one next hop demote it for that
    # destination for audit_demotion seconds.
    audit_slack_rel: float = 3.0
    audit_slack_abs: float = 0.05
    audit_strikes: int = 3
    audit_demotion: float = 120.0

    # --- bounds -----------------------------------------------------------------------------
    # Most prefixes held; updates for new prefixes beyond this are rejected (flood protection).
    max_routes: int = 65536
    # Most router ids remembered per prefix in the source table (each restart of a node makes
    # a new one).
    max_sources_per_prefix: int = 8
    # Verified-signature cache entries, request caches.
    signature_cache_size: int = 131072
    request_cache_size: int = 16384

    def __post_init__(self) -> None:
        if self.hello_interval <= 0 or self.dead_interval <= self.hello_interval:
            raise ValueError("dead_interval must exceed a positive hello_interval")
        if not 0 < self.rtt_alpha <= 1:
            raise ValueError("rtt_alpha must be in (0, 1]")
        if self.rtt_window < 1:
            raise ValueError("rtt_window must hold at least one sample")
        if self.cost_floor < 1:
            raise ValueError("cost_floor must be at least 1 so every hop costs something")
        if self.seqno_bump_burst < 1 or self.seqno_bump_min_interval <= 0:
            raise ValueError("seqno bumps need a positive interval and a burst of at least 1")
        if not 0 < self.seqno_request_dedupe < self.seqno_request_resend:
            raise ValueError("seqno_request_dedupe must be shorter than seqno_request_resend")
        if self.seqno_forward_rate <= 0 or self.seqno_forward_burst < 1:
            raise ValueError(
                "seqno request forwarding needs a positive rate and a burst of at least 1"
            )
        if (
            min(self.tlv_rate, self.reply_rate, self.answer_rate) <= 0
            or min(self.tlv_burst, self.reply_burst, self.answer_burst) < 1
        ):
            raise ValueError("per-neighbour TLV and reply budgets need positive rates and bursts")
        if (
            not 0 < self.announcement_refresh < self.announcement_lifetime
            or self.max_clock_skew < 0
        ):
            raise ValueError("announcements need 0 < refresh < lifetime and a non-negative skew")
        window = self.announcement_lifetime + 2 * self.max_clock_skew
        bumps = self.seqno_bump_burst + window / self.seqno_bump_min_interval
        if bumps + window / self.announcement_refresh >= 0x8000:
            raise ValueError(
                "an origin must not reach 2^15 seqnos within one freshness window: raise "
                "seqno_bump_min_interval or shorten announcement_lifetime"
            )
        if not 0 <= self.update_coalesce < self.hello_interval:
            raise ValueError("update_coalesce must be in [0, hello_interval)")
        if not 0 <= self.urgent_update_pace < self.hello_interval:
            raise ValueError("urgent_update_pace must be in [0, hello_interval)")
        if not 0 <= self.first_update_hold <= 1.0:
            raise ValueError("first_update_hold must be in [0, 1] s")
        if self.seqno_request_retries < 0:
            raise ValueError("seqno_request_retries cannot be negative")
        if not 256 <= self.max_payload_size <= MAX_PAYLOAD_SIZE:
            raise ValueError(
                f"max_payload_size must hold an update and stay within {MAX_PAYLOAD_SIZE} bytes"
            )
        if self.source_gc_time <= self.route_expiry_factor * self.max_advertised_interval:
            raise ValueError("source_gc_time must exceed the longest route lifetime")


DEFAULT_PARAMS = RoutingParams()
