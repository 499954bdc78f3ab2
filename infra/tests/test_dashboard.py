"""The CloudWatch dashboard of template.yaml against the metrics the functions emit.

The functions emit their metrics in the embedded metric format (shared/src/report/emf.rs):
namespace `NAMESPACE`, the names of its `names` module, per-region counts (`names::COUNTS`,
dimensions Deployment, Function and Deployment, Function, Region) and run figures (Deployment,
Function only). This test reads that Rust file as text, so that a metric renamed there (or a
widget's typo) fails here:

* every metric a widget graphs, directly or through a SEARCH expression, is one the functions
  emit, in their namespace, with dimensions they emit it with (Region only for the counts);
  every emitted metric is on the dashboard;
* the dashboard is named after the deployment, has one row per function (its totals and, by
  region, a SEARCH on its Function) and shows every alarm of the template, the fan-out's work
  queue alarms included when `Accounts` is set;
* the body is valid JSON for both settings of `Accounts`, widgets inside the 24-column grid.

Run: make pattern-test  (or .venv/tools/bin/pytest infra/tests/test_dashboard.py)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from test_event_patterns import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
EMF_SOURCE = ROOT / "shared" / "src" / "report" / "emf.rs"
DEPLOYMENT = "ami-lifecycle"  # the DeploymentName default the Resolver substitutes
SCENARIOS = {"one account": {}, "many accounts": {"Accounts": "111122223333"}}


# ----------------------------------------------------------------------------
# What the Rust source emits
# ----------------------------------------------------------------------------

class Emitted:
    """The namespace, dimensions and metric names of emf.rs, read as text."""

    def __init__(self, src: str):
        def const(name: str) -> str:
            m = re.search(rf'pub const {name}: &str = "([^"]+)";', src)
            assert m, f"{name} not found in {EMF_SOURCE.name}"
            return m.group(1)

        self.namespace = const("NAMESPACE")
        self.dimensions = {const("DEPLOYMENT"), const("FUNCTION"), const("REGION")}
        self.region = const("REGION")
        names_mod = re.search(r"pub mod names \{(.*?)\n\}", src, re.S)
        assert names_mod, "no `pub mod names` in emf.rs"
        body = names_mod.group(1)
        consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([A-Za-z]+)";', body))
        assert consts, "no metric name in emf.rs's names module"
        self.metrics = set(consts.values())
        counts = re.search(r"pub const COUNTS: \[&str; \d+\] = \[(.*?)\];", body, re.S)
        assert counts, "no names::COUNTS in emf.rs"
        self.per_region = {consts[c] for c in re.findall(r"[A-Z_]+", counts.group(1))}
        assert self.per_region <= self.metrics


@pytest.fixture(scope="module")
def emitted() -> Emitted:
    return Emitted(EMF_SOURCE.read_text())


# ----------------------------------------------------------------------------
# What the dashboard uses
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def dashboards(template: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Dashboard"}


def body(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    (resource,) = dashboards(template).values()
    text = Resolver(template, overrides).resolve(resource["Properties"]["DashboardBody"])
    return json.loads(text)


SEARCH = re.compile(r"SEARCH\('\{(?P<schema>[^}]*)\}(?P<terms>[^']*)',\s*'(?P<stat>\w+)',\s*(?P<period>\d+)\)")


def uses(widget: dict[str, Any]) -> list[dict[str, Any]]:
    """Each metric a metric widget graphs: namespace, name, dimensions (name -> value, or None
    when a SEARCH leaves it open), through a SEARCH or not."""
    out = []
    for entry in widget["properties"].get("metrics", []):
        if isinstance(entry[0], dict):
            m = SEARCH.fullmatch(entry[0]["expression"])
            assert m, f"not a SEARCH expression this test reads: {entry[0]['expression']}"
            namespace, *dims = (s.strip() for s in m.group("schema").split(","))
            terms = dict(re.findall(r'(\w+)="([^"]*)"', m.group("terms")))
            out.append({"namespace": namespace, "name": terms.pop("MetricName", None),
                        "dimensions": {d: terms.get(d) for d in dims}, "search": True,
                        "extra_terms": set(terms) - set(dims)})
        else:
            plain = [e for e in entry if not isinstance(e, dict)]
            namespace, name, *pairs = plain
            assert len(pairs) % 2 == 0, f"dimension without a value: {entry}"
            out.append({"namespace": namespace, "name": name,
                        "dimensions": dict(zip(pairs[::2], pairs[1::2])), "search": False,
                        "extra_terms": set()})
    return out


def problems(dashboard: dict[str, Any], emitted: Emitted, functions: set[str]) -> list[str]:
    """Every way a widget's metric differs from what the functions emit (empty: none)."""
    found = []
    for w in dashboard["widgets"]:
        for u in uses(w) if w["type"] == "metric" else []:
            where = f"widget {w['properties'].get('title')!r}: {u['name']}"
            if u["namespace"] != emitted.namespace:
                found.append(f"{where}: namespace {u['namespace']}, not {emitted.namespace}")
            if u["name"] not in emitted.metrics:
                found.append(f"{where}: not a metric the functions emit")
            dims = set(u["dimensions"])
            if not dims <= emitted.dimensions or u["extra_terms"]:
                found.append(f"{where}: dimensions {sorted(dims | u['extra_terms'])}")
            if emitted.region in dims and u["name"] not in emitted.per_region:
                found.append(f"{where}: emitted per run, not per region")
            if u["dimensions"].get("Deployment") != DEPLOYMENT:
                found.append(f"{where}: Deployment is {u['dimensions'].get('Deployment')!r}")
            fn = u["dimensions"].get("Function")
            if fn is not None and fn not in functions:
                found.append(f"{where}: Function {fn!r} is no function of the template")
            if not u["search"] and dims not in ({"Deployment", "Function"},
                                                {"Deployment", "Function", emitted.region}):
                found.append(f"{where}: no dimension set the functions emit")
    return found


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> set[str]:
    """The functions' names without the deployment's prefix (create-image, …)."""
    out = set()
    for r in template["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            name = r["Properties"]["FunctionName"]["Fn::Sub"]
            out.add(name.removeprefix("${DeploymentName}-"))
    assert len(out) == 5, out
    return out


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------

def test_one_dashboard_named_after_the_deployment(template):
    (resource,) = dashboards(template).values()
    assert resource["Properties"]["DashboardName"] == {"Ref": "DeploymentName"}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_widget_metric_is_one_the_functions_emit(template, emitted, functions, scenario):
    assert problems(body(template, SCENARIOS[scenario]), emitted, functions) == []


def test_every_emitted_metric_is_on_the_dashboard(template, emitted):
    used = {u["name"] for w in body(template, {})["widgets"] if w["type"] == "metric" for u in uses(w)}
    assert emitted.metrics - used == set()


def test_a_renamed_metric_fails(template, emitted, functions):
    dashboard = body(template, {})
    renamed = Emitted(EMF_SOURCE.read_text().replace('"ImagesCreated"', '"ImagesMade"'))
    found = problems(dashboard, renamed, functions)
    assert any("ImagesCreated: not a metric the functions emit" in p for p in found), found
    # A run figure graphed by region, a foreign namespace and a typo'd function are caught too.
    broken = json.loads(json.dumps(dashboard))
    broken["widgets"].append({"type": "metric", "properties": {"title": "bad", "metrics": [
        ["AmiLifecycle", "GiBFreed", "Deployment", DEPLOYMENT, "Function", "cleanup", "Region", "us-east-1"],
        ["AWS/EC2", "Runs", "Deployment", DEPLOYMENT, "Function", "cleanup"],
        ["AmiLifecycle", "Runs", "Deployment", DEPLOYMENT, "Function", "clean-up"],
    ]}})
    found = problems(broken, emitted, functions)
    assert len(found) == 3, found


def test_one_row_per_function_with_its_regions(template, functions):
    widgets = [w for w in body(template, {})["widgets"] if w["type"] == "metric"]
    for fn in sorted(functions):
        totals = [w for w in widgets if uses(w) and all(
            not u["search"] and u["dimensions"] == {"Deployment": DEPLOYMENT, "Function": fn} for u in uses(w))]
        by_region = [w for w in widgets if uses(w) and all(
            u["search"] and u["dimensions"].get("Function") == fn and "Region" in u["dimensions"]
            and u["dimensions"]["Region"] is None for u in uses(w))]
        assert len(by_region) == 1, fn
        # Its totals beside it: one row (cleanup's storage and cost widgets are rows of their own).
        assert [w for w in totals if w["y"] == by_region[0]["y"]], fn


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_alarm_of_the_template_is_shown(template, scenario):
    resolver = Resolver(template, SCENARIOS[scenario])
    alarms = {name for name, r in template["Resources"].items()
              if r["Type"] == "AWS::CloudWatch::Alarm"
              and ("Condition" not in r or resolver.condition(r["Condition"]))}
    shown = [a for w in body(template, SCENARIOS[scenario])["widgets"] if w["type"] == "alarm"
             for a in w["properties"]["alarms"]]
    refs = [re.fullmatch(r"\$\{(\w+)\.Arn\}", a) for a in shown]
    assert all(refs), shown
    assert sorted(m.group(1) for m in refs) == sorted(alarms)
    assert len(shown) <= 100  # an alarm widget shows at most 100 alarms


def test_widgets_fit_the_grid(template):
    for w in body(template, {"Accounts": "111122223333"})["widgets"]:
        assert 0 <= w["x"] and w["x"] + w["width"] <= 24, w
        if w["type"] == "metric":
            assert w["properties"]["region"] == "us-east-1", w  # the stack's region: where EMF lands
