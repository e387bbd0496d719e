-- wijgate's records. Each table keeps the record as JSON (the same
-- encoding the badger engine uses, so `wijgate store copy` moves records
-- unchanged) beside the columns that index, join or expire it.

CREATE TABLE account (
	id     text PRIMARY KEY,
	email  text NOT NULL UNIQUE,
	record jsonb NOT NULL
);

CREATE TABLE session (
	key        text PRIMARY KEY,
	account_id text NOT NULL,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);
CREATE INDEX session_account ON session (account_id);

CREATE TABLE code (
	purpose    text NOT NULL,
	email      text NOT NULL,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL,
	PRIMARY KEY (purpose, email)
);

CREATE TABLE flow (
	id         text PRIMARY KEY,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);

CREATE TABLE counter (
	key        text PRIMARY KEY,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);

CREATE TABLE organisation (
	kvk    text PRIMARY KEY,
	record jsonb NOT NULL
);

CREATE TABLE membership (
	kvk        text NOT NULL,
	account_id text NOT NULL,
	record     jsonb NOT NULL,
	PRIMARY KEY (kvk, account_id)
);
CREATE INDEX membership_account ON membership (account_id);

-- Who arrived with an eHerkenning pseudonym, to warn of one person
-- behind several accounts.
CREATE TABLE pseudonym (
	pseudonym  text NOT NULL,
	account_id text NOT NULL,
	PRIMARY KEY (pseudonym, account_id)
);

CREATE TABLE invitation (
	id         text PRIMARY KEY,
	kvk        text NOT NULL,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);
CREATE INDEX invitation_kvk ON invitation (kvk);

-- grp names the entries that are one line in the log (GroupAudit).
CREATE TABLE audit (
	id         bigserial PRIMARY KEY,
	kvk        text NOT NULL,
	at         timestamptz NOT NULL,
	grp        text,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);
CREATE INDEX audit_page ON audit (kvk, at DESC, id DESC);
CREATE UNIQUE INDEX audit_group ON audit (kvk, grp) WHERE grp IS NOT NULL;

CREATE TABLE saml_request (
	id         text PRIMARY KEY,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);

CREATE TABLE saml_seen (
	key        text PRIMARY KEY,
	expires_at timestamptz NOT NULL
);

CREATE TABLE parked_result (
	key        text PRIMARY KEY,
	expires_at timestamptz NOT NULL,
	record     jsonb NOT NULL
);

CREATE TABLE secret (
	name  text PRIMARY KEY,
	value bytea NOT NULL
);
