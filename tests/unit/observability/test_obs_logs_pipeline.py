"""Loki and Grafana Alloy configuration, and every LogQL query, checked without their binaries.

Loki and Alloy have no Debian or PyPI build and cannot run on these machines, so this stands in
for `loki -verify-config` and `alloy validate`:
- loki.yml: every key is checked against the configuration reference of the pinned Loki (3.7,
  docs/sources/shared/configuration.md), and the settings the platform relies on are asserted.
- config.alloy: parsed with a parser for the Alloy syntax; every component, argument and nested
  block is checked against the reference of the pinned Alloy (v1.19 component docs), references
  must point at components that exist and export that field.
- LogQL: parsed by Grafana's own LogQL grammar (@grafana/lezer-logql, run with Node.js), the
  parser Grafana's Loki query editor validates queries with.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from obs_support import alloy_syntax, files, queries

# ---------------------------------------------------------------- Loki

# Keys of the blocks loki.yml uses, from Loki 3.7's configuration reference. A key not listed
# here would be rejected by Loki ("field X not found in type ...") at start-up.
LOKI_KEYS: dict[str, set[str]] = {
    "": {
        "target",
        "auth_enabled",
        "server",
        "common",
        "schema_config",
        "storage_config",
        "ingester",
        "limits_config",
        "compactor",
        "query_range",
        "pattern_ingester",
        "ruler",
        "analytics",
        "querier",
        "distributor",
        "frontend",
        "query_scheduler",
        "memberlist",
        "runtime_config",
        "tracing",
        "chunk_store_config",
        "table_manager",
        "ui",
        "ingester_client",
        "frontend_worker",
        "index_gateway",
        "bloom_build",
        "bloom_gateway",
        "operational_config",
        "kafka_config",
        "dataobj",
        "overrides_exporter",
        "ballast_bytes",
        "query_engine",
        "block_builder",
        "block_scheduler",
    },
    "server": {
        "http_listen_address",
        "http_listen_port",
        "grpc_listen_address",
        "grpc_listen_port",
        "log_level",
        "log_format",
        "http_server_read_timeout",
        "http_server_write_timeout",
        "http_server_idle_timeout",
        "grpc_server_max_recv_msg_size",
        "grpc_server_max_send_msg_size",
        "register_instrumentation",
        "log_request_headers",
        "http_path_prefix",
    },
    "common": {
        "path_prefix",
        "storage",
        "persist_tokens",
        "replication_factor",
        "ring",
        "instance_interface_names",
        "instance_addr",
        "compactor_address",
        "compactor_grpc_address",
    },
    "common.ring": {
        "kvstore",
        "heartbeat_period",
        "heartbeat_timeout",
        "instance_addr",
        "instance_id",
        "replication_factor",
        "zone_awareness_enabled",
    },
    "common.ring.kvstore": {"store", "prefix", "consul", "etcd", "multi"},
    "common.storage": {
        "s3",
        "gcs",
        "azure",
        "swift",
        "filesystem",
        "bos",
        "cos",
        "hedging",
        "congestion_control",
        "object_store",
    },
    "common.storage.filesystem": {"chunks_directory", "rules_directory"},
    "schema_config": {"configs"},
    "schema_config.configs[]": {
        "from",
        "store",
        "object_store",
        "schema",
        "index",
        "chunks",
        "row_shards",
    },
    "schema_config.configs[].index": {"prefix", "period", "tags"},
    "storage_config": {
        "tsdb_shipper",
        "filesystem",
        "boltdb_shipper",
        "aws",
        "gcs",
        "azure",
        "bos",
        "swift",
        "cos",
        "named_stores",
        "index_queries_cache_config",
        "max_parallel_get_chunk",
        "max_chunk_batch_size",
        "object_prefix",
        "use_thanos_objstore",
        "object_store",
    },
    "storage_config.tsdb_shipper": {
        "active_index_directory",
        "shared_store",
        "shared_store_key_prefix",
        "cache_location",
        "cache_ttl",
        "resync_interval",
        "query_ready_num_days",
        "index_gateway_client",
        "ingesterdbretainperiod",
    },
    "ingester": {
        "lifecycler",
        "chunk_encoding",
        "chunk_idle_period",
        "chunk_block_size",
        "chunk_target_size",
        "max_chunk_age",
        "wal",
        "flush_check_period",
        "concurrent_flushes",
        "sync_period",
        "sync_min_utilization",
        "query_store_max_look_back_period",
        "autoforget_unhealthy",
    },
    "ingester.wal": {
        "enabled",
        "dir",
        "checkpoint_duration",
        "flush_on_shutdown",
        "replay_memory_ceiling",
        "disk_full_threshold",
    },
    "limits_config": {
        "retention_period",
        "retention_stream",
        "allow_structured_metadata",
        "volume_enabled",
        "reject_old_samples",
        "reject_old_samples_max_age",
        "max_query_lookback",
        "ingestion_rate_mb",
        "ingestion_burst_size_mb",
        "max_global_streams_per_user",
        "max_line_size",
        "max_query_length",
        "max_query_series",
        "max_entries_limit_per_query",
        "max_structured_metadata_size",
        "max_structured_metadata_entries_count",
        "discover_service_name",
        "discover_log_levels",
        "per_stream_rate_limit",
        "per_stream_rate_limit_burst",
        "query_timeout",
        "split_queries_by_interval",
        "max_label_names_per_series",
        "creation_grace_period",
    },
    "compactor": {
        "working_directory",
        "compaction_interval",
        "apply_retention_interval",
        "retention_enabled",
        "retention_delete_delay",
        "retention_delete_worker_count",
        "retention_table_timeout",
        "delete_request_store",
        "delete_request_store_key_prefix",
        "delete_request_store_db_type",
        "delete_batch_size",
        "delete_request_cancel_period",
        "delete_max_interval",
        "max_compaction_parallelism",
        "upload_parallelism",
        "compactor_ring",
        "run_once",
        "tables_to_compact",
        "skip_latest_n_tables",
    },
    "query_range": {
        "results_cache",
        "cache_results",
        "align_queries_with_step",
        "max_retries",
        "parallelise_shardable_queries",
        "cache_index_stats_results",
        "cache_volume_results",
    },
    "query_range.results_cache": {"cache", "compression"},
    "query_range.results_cache.cache": {
        "embedded_cache",
        "memcached",
        "memcached_client",
        "redis",
        "default_validity",
    },
    "query_range.results_cache.cache.embedded_cache": {
        "enabled",
        "max_size_mb",
        "max_size_items",
        "ttl",
    },
    "pattern_ingester": {
        "enabled",
        "lifecycler",
        "client_config",
        "concurrent_flushes",
        "flush_check_period",
    },
    "ruler": {
        "alertmanager_url",
        "external_url",
        "storage",
        "rule_path",
        "enable_api",
        "enable_alertmanager_v2",
        "ring",
        "evaluation_interval",
        "poll_interval",
        "wal",
        "remote_write",
    },
    "analytics": {"reporting_enabled", "usage_stats_url"},
}


def _walk(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(block path, key) for every key of LOKI_KEYS' blocks found in the config."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            found.append((path, key))
            child = f"{path}.{key}" if path else key
            if child in LOKI_KEYS:
                found += _walk(value, child)
            elif isinstance(value, list) and f"{child}[]" in LOKI_KEYS:
                for item in value:
                    found += _walk(item, f"{child}[]")
    return found


def test_loki_keys_exist_in_the_pinned_version() -> None:
    config = files.load_yaml(files.LOKI_CONFIG)
    unknown = [
        f"{path or '<top>'}.{key}"
        for path, key in _walk(config)
        if key not in LOKI_KEYS.get(path, set())
    ]
    assert unknown == [], f"keys Loki 3.7 does not know: {unknown}"


def test_a_misspelt_loki_key_is_caught() -> None:
    config = files.load_yaml(files.LOKI_CONFIG)
    config["compactor"]["retention_enable"] = True
    unknown = [k for p, k in _walk(config) if k not in LOKI_KEYS.get(p, set())]
    assert unknown == ["retention_enable"]


def test_loki_is_single_node_tsdb_v13_on_the_filesystem() -> None:
    config = files.load_yaml(files.LOKI_CONFIG)
    assert config["auth_enabled"] is False
    assert config["common"]["replication_factor"] == 1
    assert config["common"]["ring"]["kvstore"]["store"] == "inmemory"
    (period,) = config["schema_config"]["configs"]
    assert period["store"] == "tsdb"
    assert period["schema"] == "v13"
    assert period["object_store"] == "filesystem"
    assert period["index"]["period"] == "24h"  # TSDB needs daily index tables
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(period["from"]))
    directories = [
        config["common"]["path_prefix"],
        config["common"]["storage"]["filesystem"]["chunks_directory"],
        config["storage_config"]["tsdb_shipper"]["active_index_directory"],
        config["compactor"]["working_directory"],
    ]
    assert all(d.startswith("/loki") for d in directories), directories


def test_loki_keeps_30_days_with_the_compactor_and_structured_metadata() -> None:
    config = files.load_yaml(files.LOKI_CONFIG)
    limits = config["limits_config"]
    assert limits["retention_period"] == "720h"
    assert limits["allow_structured_metadata"] is True
    compactor = config["compactor"]
    assert compactor["retention_enabled"] is True
    # Loki 3 refuses retention without a store for delete requests
    assert compactor["delete_request_store"] == "filesystem"
    assert config["analytics"]["reporting_enabled"] is False


# ---------------------------------------------------------------- Alloy

# Components (and their arguments, nested blocks and exports) as Alloy v1.19's reference
# documents them, for the components config.alloy uses.
HTTP_CLIENT_ARGS = {
    "bearer_token_file",
    "bearer_token",
    "enable_http2",
    "follow_redirects",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
}
HTTP_CLIENT_BLOCKS = {"basic_auth", "authorization", "oauth2", "tls_config"}
RULE_ARGS = {
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
}
STAGES: dict[str, set[str]] = {
    "stage.json": {"expressions", "source", "drop_malformed"},
    "stage.match": {"selector", "pipeline_name", "action", "drop_counter_reason"},
    "stage.template": {"source", "template"},
    "stage.regex": {"expression", "source", "labels_from_groups"},
    "stage.labels": {"values"},
    "stage.structured_metadata": {"values", "regex"},
    "stage.label_drop": {"values"},
    "stage.drop": {
        "source",
        "expression",
        "value",
        "older_than",
        "longer_than",
        "drop_counter_reason",
        "separator",
    },
    "stage.timestamp": {"source", "format", "fallback_formats", "location", "action_on_failure"},
    "stage.output": {"source"},
}
COMPONENTS: dict[str, dict[str, Any]] = {
    "logging": {
        "args": {"level", "format", "write_to"},
        "blocks": {},
        "exports": set(),
        "labelled": False,
    },
    "discovery.docker": {
        "args": {"host", "port", "refresh_interval", "match_first_network"} | HTTP_CLIENT_ARGS,
        "blocks": {"filter": {"name", "values"}} | dict.fromkeys(HTTP_CLIENT_BLOCKS),
        "exports": {"targets"},
        "required": {"host"},
    },
    "discovery.relabel": {
        "args": {"targets"},
        "blocks": {"rule": RULE_ARGS},
        "exports": {"output", "rules"},
        "required": {"targets"},
    },
    "loki.source.docker": {
        "args": {"host", "targets", "forward_to", "labels", "relabel_rules", "refresh_interval"},
        "blocks": {"client": None},
        "exports": set(),
        "required": {"host", "targets", "forward_to"},
    },
    "loki.source.journal": {
        "args": {
            "forward_to",
            "format_as_json",
            "labels",
            "matches",
            "max_age",
            "path",
            "relabel_rules",
        },
        "blocks": {},
        "exports": set(),
        "required": {"forward_to"},
    },
    "loki.relabel": {
        "args": {"forward_to", "max_cache_size"},
        "blocks": {"rule": RULE_ARGS},
        "exports": {"receiver", "rules"},
        "required": {"forward_to"},
    },
    "loki.process": {
        "args": {"forward_to"},
        "blocks": dict.fromkeys(STAGES),
        "exports": {"receiver"},
        "required": {"forward_to"},
    },
    "loki.write": {
        "args": {"external_labels", "max_streams"},
        "blocks": {
            "endpoint": {
                "url",
                "name",
                "headers",
                "batch_wait",
                "batch_size",
                "bearer_token",
                "bearer_token_file",
                "proxy_url",
                "remote_timeout",
                "tenant_id",
                "min_backoff_period",
                "max_backoff_period",
                "max_backoff_retries",
                "retry_on_http_429",
                "follow_redirects",
                "enable_http2",
            },
            "wal": None,
        },
        "exports": {"receiver"},
    },
}


@pytest.fixture(scope="module")
def alloy() -> alloy_syntax.Block:
    return alloy_syntax.parse(files.ALLOY_CONFIG.read_text())


def _stages(block: alloy_syntax.Block) -> list[alloy_syntax.Block]:
    out = []
    for child in block.blocks:
        out.append(child)
        if child.name == "stage.match":
            out += _stages(child)
    return out


def test_alloy_file_parses_and_uses_known_components(alloy: alloy_syntax.Block) -> None:
    assert alloy.attrs == {}
    names = {b.name for b in alloy.blocks}
    assert {
        "discovery.docker",
        "discovery.relabel",
        "loki.source.docker",
        "loki.relabel",
        "loki.source.journal",
        "loki.process",
        "loki.write",
    } <= names
    for block in alloy.blocks:
        spec = COMPONENTS.get(block.name)
        assert spec is not None, f"line {block.line}: unknown component {block.name}"
        if spec.get("labelled", True):
            assert block.label, f"{block.name} needs a label"
        assert set(block.attrs) <= spec["args"], (block.name, set(block.attrs) - spec["args"])
        assert spec.get("required", set()) <= set(block.attrs), block.name
        for child in block.blocks:
            assert child.name in spec["blocks"], f"{block.name}: unknown block {child.name}"
            allowed = spec["blocks"][child.name]
            if allowed is not None:
                assert set(child.attrs) <= allowed, (child.name, set(child.attrs) - allowed)
        if block.name == "loki.process":
            for stage in _stages(block):
                assert stage.name in STAGES, f"unknown stage {stage.name}"
                assert set(stage.attrs) <= STAGES[stage.name], stage.name


def test_alloy_references_point_at_existing_exports(alloy: alloy_syntax.Block) -> None:
    defined = {f"{b.name}.{b.label}": b.name for b in alloy.blocks if b.label}
    refs: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, alloy_syntax.Ref):
            refs.append(value.path)
        elif isinstance(value, list):
            for v in value:
                collect(v)
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)

    for block in alloy.blocks:
        for value in block.attrs.values():
            collect(value)
    assert refs
    for ref in refs:
        component, _, export = ref.rpartition(".")
        assert component in defined, f"{ref}: no component {component}"
        assert export in COMPONENTS[defined[component]]["exports"], f"{ref}: no export {export}"


def test_alloy_rejects_broken_syntax() -> None:
    text = files.ALLOY_CONFIG.read_text()
    # a missing comma at the end of an object entry before a new line
    broken = re.sub(r'(level\s*=\s*"level \|\| record\.level\.name"),', r"\1", text)
    assert broken != text
    with pytest.raises(alloy_syntax.AlloySyntaxError):
        alloy_syntax.parse(broken)


def test_alloy_labels_and_structured_metadata(alloy: alloy_syntax.Block) -> None:
    blocks = {b.name: b for b in alloy.blocks}
    docker = blocks["discovery.docker"]
    (flt,) = docker.children("filter")
    assert flt.attrs == {"name": "label", "values": ["com.docker.stack.namespace=driftless"]}
    target_labels = {r.attrs["target_label"] for r in blocks["discovery.relabel"].children("rule")}
    assert target_labels == {"stack", "service", "container"}
    stages = _stages(blocks["loki.process"])
    label_stages = [s for s in stages if s.name == "stage.labels"]
    assert [set(s.attrs["values"]) for s in label_stages] == [{"level"}]
    (metadata,) = [s for s in stages if s.name == "stage.structured_metadata"]
    assert set(metadata.attrs["values"]) == {"trace_id", "revision"}
    selectors = [s.attrs["selector"] for s in stages if s.name == "stage.match"]
    assert any("api|reconciler" in s for s in selectors)
    assert any("nginx" in s for s in selectors)
    json_stages = [s for s in stages if s.name == "stage.json"]
    assert all("trace_id" in s.attrs["expressions"] for s in json_stages)
    # the stage.match selectors are LogQL stream selectors
    assert queries.parse_logql(selectors) == [None] * len(selectors)
    write = blocks["loki.write"].children("endpoint")[0].attrs["url"]
    assert write == "http://loki:3100/loki/api/v1/push"


# ---------------------------------------------------------------- LogQL

LOGQL = [q for q in queries.all_queries() if q.language == "logql"]


def test_dashboards_query_loki() -> None:
    assert len(LOGQL) >= 4


def test_every_logql_query_parses() -> None:
    results = queries.parse_logql([q.expr for q in LOGQL])
    errors = [f"{q.source}: {r['error']}" for q, r in zip(LOGQL, results, strict=True) if r]
    assert errors == []


def test_the_logql_check_rejects_broken_queries() -> None:
    broken = [
        '{service="x" |= "a"',
        'sum by (a) (count_over_time({a="b"} | json [5m])',
        '{a="b"} | json | status >=',
        'rate({a="b"})',
    ]
    assert all(r is not None for r in queries.parse_logql(broken))


def test_logql_follows_label_then_line_filter_then_parser_order() -> None:
    for q in LOGQL:
        selector = re.search(r"\{[^}]*\}", q.expr)
        assert selector, q.source
        rest = q.expr[selector.end() :]
        line_filter = re.search(r"\|=|!=|\|~|!~", rest)
        parser = re.search(r"\|\s*(json|logfmt|regexp|pattern|unpack)\b", rest)
        if parser:
            assert line_filter, f"{q.source}: filter lines before parsing them"
            assert line_filter.start() < parser.start(), (
                f"{q.source}: a line filter must come before the parser"
            )
        assert "stack=" in q.expr[selector.start() : selector.end()], q.source


def _relabel(rules: list[alloy_syntax.Block], labels: dict[str, str]) -> dict[str, str]:
    """Prometheus relabelling (the replace and labeldrop actions) of a label set, then the
    internal `__` labels dropped, as loki.source.journal does before it forwards an entry."""
    out = dict(labels)
    for rule in rules:
        action = rule.attrs.get("action", "replace")
        regex = re.compile(f"^(?:{rule.attrs.get('regex', '(.*)')})$")
        if action == "labeldrop":
            out = {k: v for k, v in out.items() if not regex.match(k)}
            continue
        assert action == "replace", action
        value = rule.attrs.get("separator", ";").join(
            out.get(s, "") for s in rule.attrs["source_labels"]
        )
        m = regex.match(value)
        if m:
            out[rule.attrs["target_label"]] = m.expand(
                rule.attrs.get("replacement", "$1").replace("$", "\\")
            )
    return {k: v for k, v in out.items() if not k.startswith("__")}


def test_alloy_reads_the_host_reconciler_from_the_journal_like_its_container(
    alloy: alloy_syntax.Block,
) -> None:
    """reconciler.service logs to the journal; its lines must reach Loki with the labels of the
    stack's containers, through the same JSON parsing, from a journal the stack mounts."""
    blocks = {f"{b.name}.{b.label}": b for b in alloy.blocks}
    journal = blocks["loki.source.journal.reconciler"]
    assert journal.attrs["matches"] == "_SYSTEMD_UNIT=reconciler.service"
    assert (files.ROOT / "systemd" / "reconciler.service").exists()
    unit = (files.ROOT / "systemd" / "reconciler.service").read_text()
    assert "StandardOutput=" not in unit
    assert "StandardError=" not in unit  # both go to the journal
    assert journal.attrs["forward_to"] == [alloy_syntax.Ref("loki.process.parse.receiver")]
    relabel = blocks["loki.relabel.journal"]
    assert journal.attrs["relabel_rules"] == alloy_syntax.Ref("loki.relabel.journal.rules")

    # what a journal entry of the unit becomes: the component's labels and job, the journal's
    # fields as __journal_* labels, then the relabel rules
    entry = {
        **journal.attrs["labels"],
        "job": "loki.source.journal.reconciler",
        "__journal__systemd_unit": "reconciler.service",
        "__journal_syslog_identifier": "reconciler",
        "__journal_priority": "6",
    }
    labels = _relabel(relabel.children("rule"), entry)
    docker_labels = {
        r.attrs["target_label"] for r in blocks["discovery.relabel.stack"].children("rule")
    }
    assert set(labels) == docker_labels == {"stack", "service", "container"}
    assert labels["stack"] == "driftless"
    assert labels["container"] == "reconciler.service"
    # the service label selects the reconciler's JSON parsing (level, trace_id, revision)
    (parsing,) = [
        s
        for s in blocks["loki.process.parse"].children("stage.match")
        if s.children("stage.json") and "reconciler" in s.attrs["selector"]
    ]
    pattern = re.fullmatch(r'\{service=~"(.+)"\}', parsing.attrs["selector"])
    assert pattern
    assert re.fullmatch(pattern.group(1), labels["service"])
    (expressions,) = [s.attrs["expressions"] for s in parsing.children("stage.json")]
    assert {"level", "trace_id", "revision"} <= set(expressions)

    # the journal the component reads is the host's, mounted read-only into the alloy service
    stack = files.load_yaml(files.ROOT / "desired-state" / "base" / "stack.yml")
    path = journal.attrs["path"]
    assert f"{path}:{path}:ro" in stack["services"]["alloy"]["volumes"]
    # which exists on the VM because the bootstrap keeps the journal on disk
    bootstrap = (files.ROOT / "scripts" / "bootstrap-vm.sh").read_text()
    assert "Storage=persistent" in bootstrap
    assert path == "/var/log/journal"


def test_the_journal_relabelling_check_catches_a_kept_job_label(
    alloy: alloy_syntax.Block,
) -> None:
    relabel = next(b for b in alloy.blocks if b.name == "loki.relabel")
    rules = [r for r in relabel.children("rule") if r.attrs.get("action") != "labeldrop"]
    labels = _relabel(rules, {"job": "loki.source.journal.reconciler", "stack": "driftless"})
    assert "job" in labels
