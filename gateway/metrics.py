"""Prometheus metrics of the gateway (exposed at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_IN = Counter(
    "hotline_messages_in_total", "Citizen messages accepted, per channel", ["channel"], registry=REGISTRY
)
DUPLICATES = Counter(
    "hotline_duplicates_total", "Retried or re-delivered messages dropped", ["channel"], registry=REGISTRY
)
MESSAGES_OUT = Counter(
    "hotline_messages_out_total", "Messages delivered to citizens", ["channel", "kind"], registry=REGISTRY
)
DELIVERY_RETRIES = Counter(
    "hotline_delivery_retries_total", "Deliveries postponed for a retry", ["channel"], registry=REGISTRY
)
TICKETS_FILED = Counter("hotline_tickets_filed_total", "Tickets filed", ["channel"], registry=REGISTRY)
KNOWLEDGE = Counter(
    "hotline_knowledge_answers_total",
    "Questions answered from the knowledge base (answered), and the citizens' verdicts (solved, unsolved)",
    ["outcome"], registry=REGISTRY,
)
FOLLOWUPS = Counter(
    "hotline_followups_total",
    "The citizens' words on filed tickets the bot recorded: 催办 (urge) and 补充 (info)",
    ["kind"], registry=REGISTRY,
)
SURVEY_REMINDERS = Counter(
    "hotline_survey_reminders_total", "回访 surveys asked again, or not (the citizen answered or wrote since)",
    ["outcome"], registry=REGISTRY,
)
UNIT_NOTICES = Counter(
    "hotline_unit_notices_total",
    "Mail to units, 派单通知 (dispatch), 催办通知 (urge), 待办提醒 (digest): sent, refused for good, deferred (server down or busy: tried again), queued (the mailbox deferred: retried on its own), expired (queued past its keeping time)",
    ["kind", "outcome"], registry=REGISTRY,
)
FILING_RETRIES = Counter("hotline_filing_retries_total", "Ticket filings postponed", registry=REGISTRY)
DEAD_LETTERS = Counter("hotline_dead_letters_total", "Entries moved to dead letters", ["stream"], registry=REGISTRY)
DEAD_WAITING = Gauge(
    "hotline_dead_letters_waiting", "Dead letters not yet retried or discarded", registry=REGISTRY
)
PULL_AGE = Gauge(
    "hotline_portal_pull_age_seconds", "Seconds since a pulled portal source last answered with a page",
    ["source"], registry=REGISTRY,
)
STREAM_LAG = Gauge("hotline_stream_lag", "Entries not yet read by the group", ["stream"], registry=REGISTRY)
STREAM_PENDING = Gauge(
    "hotline_stream_pending", "Entries read but not yet acknowledged", ["stream"], registry=REGISTRY
)
TURN_SECONDS = Histogram(
    "hotline_bot_turn_seconds", "Time to handle one inbound message (NLU + bot + commit)", registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
TO_TICKET_SECONDS = Histogram(
    "hotline_message_to_ticket_seconds", "From the confirming message to the ticket number", registry=REGISTRY,
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACK_SECONDS = Histogram(
    "hotline_http_seconds", "Time to answer an HTTP request", ["route"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
