-- lwm2md registry, schema version 1. Applied by registry/postgres at start,
-- in one transaction with the row of schema_migrations that records it.
-- Names and keys use COLLATE "C" so that they sort by bytes, as the
-- embedded store does, whatever the database's locale.

CREATE TABLE meta (
	key   text COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);

-- Registrations: data is the record in the JSON of docs/registry.md; the
-- other columns repeat what List filters on.
CREATE TABLE registrations (
	endpoint   text COLLATE "C" PRIMARY KEY,
	id         text COLLATE "C" NOT NULL UNIQUE,
	version    text NOT NULL,
	expires_at timestamptz,
	updated_at timestamptz NOT NULL,
	data       jsonb NOT NULL
);
CREATE INDEX registrations_expires_at ON registrations (expires_at) WHERE expires_at IS NOT NULL;

-- Credentials: psk_key is sealed (AES-GCM, see docs/registry.md).
CREATE TABLE credentials (
	endpoint     text COLLATE "C" PRIMARY KEY,
	psk_identity text COLLATE "C" UNIQUE,
	psk_key      bytea,
	certificates jsonb NOT NULL,
	updated_at   timestamptz NOT NULL
);
CREATE TABLE cert_bindings (
	fingerprint text COLLATE "C" PRIMARY KEY,
	endpoint    text COLLATE "C" NOT NULL REFERENCES credentials ON DELETE CASCADE
);
CREATE INDEX cert_bindings_endpoint ON cert_bindings (endpoint);

-- Bootstrap configurations, sealed.
CREATE TABLE bootstrap_configs (
	endpoint   text COLLATE "C" PRIMARY KEY,
	config     bytea NOT NULL,
	updated_at timestamptz NOT NULL
);

CREATE TABLE observations (
	endpoint        text COLLATE "C" NOT NULL,
	token           bytea NOT NULL,
	registration_id text NOT NULL,
	paths           text[] NOT NULL,
	composite       boolean NOT NULL,
	format          integer NOT NULL,
	attributes      text[] NOT NULL,
	started         timestamptz NOT NULL,
	PRIMARY KEY (endpoint, token)
);

-- Each device's queue: the ID is the order.
CREATE TABLE queue (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	endpoint       text COLLATE "C" NOT NULL,
	operation      text NOT NULL,
	path           text NOT NULL,
	format         integer NOT NULL,
	payload        bytea,
	deadline       timestamptz,
	job_id         text NOT NULL,
	status         text NOT NULL,
	owner          text NOT NULL,
	lease_until    timestamptz,
	attempts       integer NOT NULL,
	result_status  text,
	result_code    smallint,
	result_format  integer,
	result_payload bytea,
	result_error   text,
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL
);
CREATE INDEX queue_endpoint ON queue (endpoint, id);
CREATE INDEX queue_open ON queue (endpoint, id) WHERE status IN ('pending', 'sent');
CREATE INDEX queue_deadline ON queue (deadline) WHERE status IN ('pending', 'sent') AND deadline IS NOT NULL;

-- Jobs and their per-device results. json, not jsonb: the documents come
-- back byte for byte.
CREATE TABLE jobs (
	id         text COLLATE "C" PRIMARY KEY,
	kind       text NOT NULL,
	spec       json,
	status     text NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE TABLE job_results (
	job_id      text COLLATE "C" NOT NULL REFERENCES jobs ON DELETE CASCADE,
	endpoint    text COLLATE "C" NOT NULL,
	status      text NOT NULL,
	owner       text NOT NULL,
	lease_until timestamptz,
	attempts    integer NOT NULL,
	result      json,
	error       text NOT NULL,
	updated_at  timestamptz NOT NULL,
	PRIMARY KEY (job_id, endpoint)
);
CREATE INDEX job_results_open ON job_results (job_id, endpoint) WHERE status IN ('pending', 'running');

CREATE TABLE tags (
	endpoint text COLLATE "C" NOT NULL,
	key      text COLLATE "C" NOT NULL,
	value    text COLLATE "C" NOT NULL,
	PRIMARY KEY (endpoint, key)
);
CREATE INDEX tags_key_value ON tags (key, value, endpoint);

-- Last known values: path is the IDs, so that it sorts like a path.
CREATE TABLE resource_values (
	endpoint    text COLLATE "C" NOT NULL,
	path        integer[] NOT NULL,
	type        text NOT NULL,
	value       text NOT NULL,
	device_time timestamptz,
	server_time timestamptz NOT NULL,
	PRIMARY KEY (endpoint, path)
);
