package web

// Term is one piece of jargon a page shows, with a one-line definition in a
// newcomer's words. The page (static/glossary.js) finds a term wherever it is
// drawn: a badge, a state word, a knob, a ledger line, the event log.
type Term struct {
	Term string `json:"term"` // how the glossary names it
	Def  string `json:"def"`
	// Match are regular expressions, matched without regard to case, that
	// find the term in a text; Exact are matched case-sensitively, for state
	// words the diagram draws in capitals (OPEN, ABSENT) that are common
	// words in lower case. Both use only syntax that Go and JavaScript read
	// alike. Where several terms match at one place the longest wins.
	Match []string `json:"match,omitempty"`
	Exact []string `json:"exact,omitempty"`
}

// Glossary is every term a page defines. It is sent to each page once, as
// JSON in the layout.
var Glossary = []Term{
	// RabbitMQ
	{Term: "fanout", Def: "An exchange that copies every message to every queue bound to it.",
		Match: []string{`\bfanout\b`}},
	{Term: "exclusive", Def: "A queue only its own connection may use: RabbitMQ deletes it, and the messages in it, when that connection closes.",
		Match: []string{`\bexclusive\b`}},
	{Term: "server-named", Def: "The queue was declared without a name, so RabbitMQ made one up (amq.gen-…): a new one each time.",
		Match: []string{`\bserver-named\b`}},
	{Term: "amq.gen-…", Def: "A name RabbitMQ invented for a queue declared with an empty name; no one else can know it in advance.",
		Match: []string{`\bamq\.gen-[A-Za-z0-9_-]*`}},
	{Term: "durable", Def: "A named queue that stays when its consumer disconnects (and when RabbitMQ restarts), keeping its messages.",
		Match: []string{`\bdurable\b`}},
	{Term: "ABSENT", Def: "The queue does not exist on the broker now: events meant for it are dropped, not kept.",
		Exact: []string{`\bABSENT\b`}},
	{Term: "ready", Def: "Messages waiting in the queue for a consumer to take them.",
		Match: []string{`\bready\b`}},
	{Term: "unacked", Def: "Handed to a consumer but not yet acknowledged: the broker keeps it and resends it if the consumer dies.",
		Match: []string{`\bunacked\b`}},
	{Term: "prefetch", Def: "How many messages the broker may hand a consumer at once before it has acknowledged any of them.",
		Match: []string{`\bprefetch\b`}},
	{Term: "auto-ack", Def: "The broker counts a message done the moment it sends it, before the consumer has processed it.",
		Match: []string{`\bauto-ack(ed)?\b`}},
	{Term: "manual ack", Def: "The consumer says “done” only after processing; until then the broker keeps the message and can resend it.",
		Match: []string{`\bmanual ack\b`, `\bmanual, after processing\b`}},
	{Term: "in memory", Def: "Auto-acked messages already gone from the queue, waiting inside the consumer: if it crashes they are lost.",
		Match: []string{`\bin memory\b`}},
	{Term: "redelivered", Def: "Sent again by the broker because the first delivery was never acknowledged.",
		Match: []string{`\bredeliver(ed|y|ies)\b`}},
	{Term: "mandatory", Def: "A publish flag: when no queue takes the event, the broker sends it back instead of dropping it silently.",
		Match: []string{`\bmandatory\b`}},
	{Term: "312 NO_ROUTE", Def: "The broker's answer to a mandatory event that no queue was bound to take: it came back unrouted.",
		Match: []string{`\b312 NO_ROUTE\b`, `\bNO_ROUTE\b`}},
	{Term: "publisher confirms", Def: "The broker tells the publisher once it has safely taken each message; without them a lost publish goes unnoticed.",
		Match: []string{`\bpublisher confirms\b`, `\bconfirmed by the broker\b`}},
	{Term: "DLX", Def: "Dead-letter exchange: where the broker sends a message that was rejected or failed too often.",
		Match: []string{`\bDLX\b`, `\bdead-letter exchange\b`}},
	{Term: "DLQ", Def: "Dead-letter queue: rejected or failed messages wait there for a person to look at them.",
		Match: []string{`\bDLQ\b`, `\bdead letters\b`}},
	{Term: "poison", Def: "A message the consumer can never process (here: malformed JSON); retrying it forever only loops.",
		Match: []string{`\bpoison\b`}},

	// HTTP request-response
	{Term: "breaker OPEN", Def: "The circuit breaker is blocking calls: order-service fails each one at once, without calling product-service.",
		Match: []string{`\bbreaker open\b`}, Exact: []string{`\bOPEN\b`}},
	{Term: "breaker HALF-OPEN", Def: "The breaker lets one trial call through: if it works, calls flow again; if not, it opens again.",
		Match: []string{`\bhalf-open\b`}},
	{Term: "breaker CLOSED", Def: "The breaker lets every call through and counts failures in a row.",
		Exact: []string{`\bCLOSED\b`}},
	{Term: "timeout", Def: "How long a caller waits for an answer before giving up; with none it waits as long as the callee hangs.",
		Match: []string{`\btimeout\b`, `\btimed out\b`}},

	// Kafka
	{Term: "partition", Def: "One ordered slice of a Kafka topic; records with the same key always land in the same partition.",
		Match: []string{`\bpartitions?\b`}},
	{Term: "offset", Def: "A record's position in its partition: 0, 1, 2, … A consumer group remembers the next one to read.",
		Match: []string{`\boffsets?\b`}},
	{Term: "commit", Def: "A consumer group saves how far it has processed a partition, so whoever reads it next resumes there.",
		Match: []string{`\bcommit(s|ted)?\b`}},
	{Term: "auto-commit", Def: "The client commits on a timer (every 5 s), whether or not the records were processed yet.",
		Match: []string{`\bauto-commit\b`}},
	{Term: "uncommitted", Def: "Processed but not yet committed: after a crash the next owner processes these records again (duplicates).",
		Match: []string{`\buncommitted\b`}},
	{Term: "lag", Def: "Records in a partition that the consumer group has not committed yet: how far behind it is.",
		Match: []string{`\blag\b`}},
	{Term: "CAUGHT UP", Def: "Every record of the partition is processed; any lag left is only waiting for its commit (auto-commit, every 5 s).",
		Exact: []string{`\bCAUGHT UP\b`}},
	{Term: "BEHIND", Def: "Records written seconds ago are still not processed: whoever reads the partition is not keeping up.",
		Exact: []string{`\bBEHIND\b`}},
	{Term: "ORPHANED", Def: "The partition's owner crashed and the group has not noticed yet: nobody reads it until the session timeout passes.",
		Match: []string{`\borphaned\b`}},
	{Term: "session timeout", Def: "How long the group waits for a silent member before declaring it dead and giving its partitions to others.",
		Match: []string{`\bsession timeout\b`}},
	{Term: "rebalance", Def: "The consumer group shares its partitions out again, after a member joins, leaves or is declared dead.",
		Match: []string{`\brebalanc(e|es|ed|ing)\b`}},
	{Term: "acks", Def: "What the broker must do before it tells the producer a record is written.",
		Match: []string{`\backs\b`}},
	{Term: "acks all", Def: "The producer counts a record written only once every in-sync copy of its partition has stored it.",
		Match: []string{`\backs all\b`, `\ball in-sync replicas\b`}},
	{Term: "acks leader", Def: "The producer counts a record written once the partition's leader stored it; copies may still be missing.",
		Match: []string{`\backs leader\b`, `\bleader only\b`}},
	{Term: "acks none", Def: "Fire and forget: the broker never answers, so the producer cannot know whether a record was lost.",
		Match: []string{`\backs none\b`, `\bfire and forget\b`}},
	{Term: "delivery timeout", Def: "How long the producer keeps a record and retries it through an outage before it gives up on it.",
		Match: []string{`\bdelivery timeout\b`}},
	{Term: "linger", Def: "How long the producer waits to gather records into one batch before sending them.",
		Match: []string{`\blinger\b`}},
	{Term: "flush", Def: "p.flush(): wait until the broker has acknowledged every record handed over so far; after each record, one at a time.",
		Match: []string{`\bflush(ed|ing)?\b`}},
	{Term: "idempotent", Def: "Doing it twice has the effect of doing it once: a record seen again is skipped, not processed again.",
		Match: []string{`\bidempotent\b`}},
	{Term: "duplicates", Def: "A side effect done twice for one message, e.g. stock reserved twice for one order.",
		Match: []string{`\bduplicates?\b`}},
	{Term: "eventual consistency", Def: "Services agree only after a delay: inventory catches up with orders once it has read the backlog.",
		Match: []string{`\beventual(ly)? consisten(t|cy)\b`}},
}
