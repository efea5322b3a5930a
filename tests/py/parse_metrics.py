#!/usr/bin/python3
"""Parses an OpenMetrics exposition (stdin) with the Prometheus client's strict parser and
prints it as JSON: {family: {"type": ..., "samples": [[name, labels, value], ...]}}.
Exits non-zero (with the parser's error) when the text is not valid OpenMetrics."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(out))
