"""The Markdown report: a summary table of targets, then one table per measurement."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from pathlib import Path

START: Final = "<!-- bench:start -->"
END: Final = "<!-- bench:end -->"
#: Section 9 has a block of its own: it takes minutes, so it is often run alone (``--only release --readme``),
#: which must not wipe the other sections' figures.
RELEASE_START: Final = "<!-- bench:release:start -->"
RELEASE_END: Final = "<!-- bench:release:end -->"
#: Section 10 (issue 24's client CPU per scored row against the msgspec floor) has a block of its own too:
#: it is run alone (``--only columnar --readme``) while the client's columnar path changes.
COLUMNAR_START: Final = "<!-- bench:columnar:start -->"
COLUMNAR_END: Final = "<!-- bench:columnar:end -->"
#: Sections written into blocks of their own (start and end markers), not into the main one.
OWN_BLOCKS: Final = {"release": (RELEASE_START, RELEASE_END), "columnar": (COLUMNAR_START, COLUMNAR_END)}


def _ok(met: bool | None) -> str:
    return "n/a" if met is None else ("yes" if met else "**MISSED**")


def _s(value: float) -> str:
    return f"{value:.3f} s"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _load(section: dict[str, Any]) -> str:
    load = section.get("load_average_at_start")
    return "" if load is None else f" (load {load})"


def _summary_rows(results: dict[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    sections = results["sections"]
    if "calls" in sections:
        calls = sections["calls"]
        ours = [r for r in calls["rows"] if r["client"] != "http provider"]
        biggest = max(ours, key=lambda r: (r["datasets"], r["indicators"]))
        rows.append(
            [
                "1. API calls",
                calls["target"],
                f"N={biggest['datasets']:,}, K={biggest['indicators']}: {biggest['batch_calls']} batch calls "
                f"(min {biggest['min_batch_calls']}), {biggest['versions_calls']} /versions (free), "
                f"{biggest['token_requests']} token request; all {len(ours)} runs of ours at the minimum: "
                f"{all(r['at_minimum'] for r in ours)}",
                _ok(calls["met"]),
            ]
        )
    if "overhead" in sections:
        overhead = sections["overhead"]
        overhead_target = overhead["target"].split(" (", 1)[0]
        for size in overhead["sizes"]:
            ratios = size["ratios"]
            rows.append(
                [
                    f"2. Overhead, N={size['datasets']:,}{_load(overhead)}",
                    overhead_target,
                    f"hook {ratios['hook/bare wall']}x, operator {ratios['operator/bare+write wall']}x, operator/http "
                    f"provider {ratios['operator/http provider wall']}x "
                    f"(client CPU: hook {ratios['hook/bare client cpu']}x, operator "
                    f"{ratios['operator/bare+write client cpu']}x); {size['rounds']} rounds",
                    _ok(size["met_hook"] and size["met_operator"]),
                ]
            )
        for skipped in overhead.get("skipped", []):
            rows.append([f"2. Overhead, N={skipped:,}", overhead_target, "not run: use `--full`", "n/a"])
    if "latency" in sections:
        latency = sections["latency"]
        rows.append(
            [
                f"3. Latency {latency['latency_ms']:g} ms, N={latency['datasets']:,}{_load(latency)}",
                ">= 6x sequential bare loop, <= 8 in flight",
                f"hook {latency['speedup']['hook']}x, operator {latency['speedup']['operator']}x; emulator max in "
                f"flight {max(latency['emulator_max_in_flight'][k] for k in latency['emulator_max_in_flight'])} "
                f"(ideal speedup {latency['ideal_seconds']['ideal speedup']}x)",
                _ok(latency["met"]),
            ]
        )
    if "memory" in sections:
        memory = sections["memory"]
        sizes = list(memory["runs"])
        rows.append(
            [
                f"4. Memory, {int(sizes[1]):,} vs {int(sizes[0]):,} datasets{_load(memory)}",
                "peak RSS difference < 64 MB",
                f"ru_maxrss difference {memory['difference_mb']} MB ({memory['runs'][sizes[0]]['maxrss_mb']} -> "
                f"{memory['runs'][sizes[1]]['maxrss_mb']} MB); growth during ingestion "
                f"{memory['runs'][sizes[0]]['ingest_growth_mb']} -> {memory['runs'][sizes[1]]['ingest_growth_mb']} MB",
                _ok(memory["met"]),
            ]
        )
        by_k = memory.get("by_indicators")
        if by_k:
            ks = list(by_k["runs"])
            rows.append(
                [
                    f"4. Memory as K grows, N={by_k['datasets']:,}, K={', '.join(ks)}",
                    f"RSS growth difference < {by_k['target'].rsplit('< ', 1)[-1]}",
                    "growth during ingestion "
                    + " -> ".join(f"{by_k['runs'][k]['ingest_growth_mb']} MB" for k in ks)
                    + f" (difference {by_k['growth_difference_mb']} MB)",
                    _ok(by_k["met"]),
                ]
            )
    if "parse" in sections:
        parse = sections["parse"]
        ours = parse["median_ms"]["example DAG"]
        baseline = parse["median_ms"]["same-shape DAG without the provider"]
        rows.append(
            [
                f"5. DAG parse cost{_load(parse)}",
                "< 30 ms over `import airflow.sdk`",
                f"{ours['total_ms']} ms; our provider's import step {ours['provider_ms']} ms; the same-shape DAG "
                f"without our provider {baseline['total_ms']} ms (difference {parse['provider_attributable_ms']} ms)",
                _ok(parse["met"]),
            ]
        )
    if "alternative" in sections and "overhead" in sections:
        size = sections["overhead"]["sizes"][0]
        alternative = sections["alternative"]
        ratios = size["ratios"]
        failed = [c["fault"] for c in alternative["faults"] if c["http provider (HttpHook)"]["outcome"] != "complete"]
        rows.append(
            [
                "6. http provider (HttpHook)",
                "comparison",
                f"N={size['datasets']:,}: wall {ratios['http provider/bare+write wall']}x bare+write, client CPU "
                f"{ratios['http provider/bare+write client cpu']}x; fails on: {', '.join(failed) or 'none'}",
                "n/a",
            ]
        )
    if "dlt" in sections:
        dlt = sections["dlt"]
        ratios = dlt["ratios"]
        failed = [c["fault"] for c in dlt["faults"] if c["dlt (RESTClient)"]["outcome"] != "complete"]
        rows.append(
            [
                f"7. dlt peer, N={dlt['datasets']:,}{_load(dlt)}",
                dlt["target"],
                f"operator {ratios['operator/dlt wall']}x dlt wall ({ratios['operator/dlt client cpu']}x client CPU); "
                f"dlt {ratios['dlt/bare+write wall']}x bare+write wall, {ratios['dlt/bare+write client cpu']}x CPU; "
                f"dlt fails on: {', '.join(failed) or 'none'}",
                _ok(dlt["met"]),
            ]
        )
    if "ratelimit" in sections:
        rows.append(_ratelimit_summary(sections["ratelimit"]))
    if "release" in sections:
        rows.append(_release_summary_row(sections["release"]))
        rows += _release_target_rows(sections["release"])
    if "columnar" in sections:
        rows += _columnar_summary_rows(sections["columnar"])
    return rows


def _ratelimit_summary(section: dict[str, Any]) -> list[Any]:
    adaptive = section["runs"][next(iter(section["runs"]))]
    widths = ", ".join(f"{r['peak_in_flight']} -> {r['final_in_flight']}" for r in adaptive)
    refused = ", ".join(f"{r['ledger_429']} of {r['batch_calls']}" for r in adaptive)
    return [
        f"8. Server limit {section['server_limit']}, {section['latency_ms']:g} ms, N={section['datasets']:,}"
        f"{_load(section)}",
        section["target"],
        f"wall {section['wall_ratio']}x the run told max_in_flight={section['server_limit']}; 429s {refused} "
        f"batch calls (at most {section['max_rate_limited_share']:.1%}); widths peak -> final {widths}; ledger "
        f"agrees: {section['ledger_agrees']}",
        _ok(section["met"]),
    ]


def _produced_by(meta: dict[str, Any]) -> str:
    machine = meta["machine"]
    return (
        f"Produced by `{meta['command']}` on {meta['date']} in {meta['duration_s']:.0f} s "
        f"(profile `{meta['profile']}`). Machine: {machine['cpu_count']} cores ({machine['usable_cpus']} usable), "
        f"Python {machine['python']}, load average at start {machine['load_average_at_start']}."
    )


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        _produced_by(meta) + " Figures are medians over interleaved repeats; ratios are medians of per-round "
        "ratios (same run, same emulator process). Absolute times depend on the machine; read the ratios.",
        "",
        *_table(["measurement", "target", "result", "met"], _summary_rows(results)),
    ]
    sections = results["sections"]
    if "calls" in sections:
        lines += ["", "**1. Calls** (ledger of the emulator; `min` = ceil(N/100) x ceil(K/100))", ""]
        rows = [
            [
                r["client"],
                f"{r['datasets']:,}",
                r["indicators"],
                r["batch_calls"],
                r["min_batch_calls"],
                r["versions_calls"],
                r["token_requests"],
                r["tcp_connections"],
                _ok(r["at_minimum"]),
            ]
            for r in sections["calls"]["rows"]
        ]
        lines += _table(["client", "N", "K", "batch", "min", "/versions", "tokens", "TCP conns", "minimum"], rows)
        lines += ["", sections["calls"]["versions_call_note"]]
    if "overhead" in sections:
        for size in sections["overhead"]["sizes"]:
            title = f"**2. Overhead**, N={size['datasets']:,}, K={size['indicators']}, {size['rounds']} rounds"
            lines += ["", title, ""]
            rows = [[name, _s(v["median_wall_s"]), _s(v["median_cpu_s"])] for name, v in size["variants"].items()]
            lines += _table(["variant", "median wall", "median client CPU"], rows)
            lines += ["", "Ratios: " + ", ".join(f"{k} {v}x" for k, v in size["ratios"].items()) + "."]
    if "latency" in sections:
        latency = sections["latency"]
        lines += ["", f"**3. Latency-bound**, {latency['latency_ms']:g} ms per call, N={latency['datasets']:,}", ""]
        rows = [
            [
                name,
                _s(v["median_wall_s"]),
                _s(v["median_cpu_s"]),
                _s(latency["emulator_cpu_s"][name]),
                latency["emulator_max_in_flight"][name],
            ]
            for name, v in latency["variants"].items()
        ]
        lines += _table(["variant", "median wall", "client CPU", "emulator CPU", "emulator max in flight"], rows)
        ideal = latency["ideal_seconds"]
        lines += ["", "Latency-only bounds: " + ", ".join(f"{k} {v}" for k, v in ideal.items()) + "."]
    if "memory" in sections:
        memory = sections["memory"]
        lines += ["", "**4. Memory** (fresh subprocess per size, operator to JSON Lines)", ""]
        rows = [
            [
                f"{int(n):,}",
                f"{r['maxrss_after_imports_mb']} MB",
                f"{r['maxrss_mb']} MB",
                f"{r['rss_before_ingest_mb']} MB",
                f"{r['rss_peak_during_ingest_mb']} MB",
                f"{r['bytes']:,}",
                _s(r["seconds"]),
            ]
            for n, r in memory["runs"].items()
        ]
        header = [
            "datasets",
            "ru_maxrss after imports",
            "ru_maxrss at end",
            "RSS before ingest",
            "RSS peak during ingest (5 ms samples)",
            "file bytes",
            "ingest time",
        ]
        lines += _table(header, rows)
        by_k = memory.get("by_indicators")
        if by_k:
            lines += ["", f"Memory as K grows: the same {by_k['datasets']:,} datasets scored for each K", ""]
            rows = [
                [
                    k,
                    f"{r['rss_before_ingest_mb']} MB",
                    f"{r['rss_peak_during_ingest_mb']} MB",
                    f"{r['ingest_growth_mb']} MB",
                    f"{r['bytes']:,}",
                    _s(r["seconds"]),
                ]
                for k, r in by_k["runs"].items()
            ]
            header = ["K", "RSS before ingest", "RSS peak during ingest", "growth", "file bytes", "ingest time"]
            lines += _table(header, rows)
    if "parse" in sections:
        parse = sections["parse"]
        lines += ["", f"**5. DAG parse** (`{parse['dag_file']}`, median of {parse['repeats']} fresh interpreters)", ""]
        rows = [
            [name, m["sdk_names_ms"], m["provider_ms"], m["dag_body_ms"], m["total_ms"]]
            for name, m in parse["median_ms"].items()
        ]
        lines += _table(["file", "airflow.sdk names ms", "provider import ms", "DAG body ms", "total ms"], rows)
        top = ", ".join(f"{t['module']} {t['cumulative_ms']} ms" for t in parse["importtime_top"][:5])
        if top:
            lines += ["", f"`-X importtime`, outermost imports after airflow.sdk: {top}."]
    if "alternative" in sections:
        alternative = sections["alternative"]
        lines += ["", f"**6. Faults on the 2nd batch call** (N={alternative['datasets']})", ""]
        names = [k for k in alternative["faults"][0] if k != "fault"]
        rows = [
            [case["fault"], *(f"{case[n]['outcome']} ({case[n]['seconds']} s)" for n in names)]
            for case in alternative["faults"]
        ]
        masked = alternative["token_masked_in_logs"]
        rows.append(["token masked in logs", *(str(masked[k]) for k in masked)])
        lines += _table(["case", *names], rows)
        lines += ["", "What the http provider cannot do: " + " ".join(alternative["cannot_do"])]
    if "dlt" in sections:
        lines += _dlt_lines(sections["dlt"])
    if "ratelimit" in sections:
        lines += _ratelimit_lines(sections["ratelimit"])
    if "release" in sections:
        lines += _release_lines(sections["release"])
    if "columnar" in sections:
        lines += _columnar_lines(sections["columnar"])
    return "\n".join(lines) + "\n"


def _ratelimit_lines(section: dict[str, Any]) -> list[str]:
    """Section 8: each variant's wall time, then each timed run's widths and 429s (manifest and ledger)."""
    lines = [
        "",
        f"**8. Server limit of {section['server_limit']} calls in flight** (429 with `Retry-After: 0` above it), "
        f"{section['latency_ms']:g} ms per call, N={section['datasets']:,}, K={section['indicators']}, "
        f"{section['rounds']} rounds",
        "",
    ]
    rows = [[name, _s(v["median_wall_s"]), _s(v["median_cpu_s"])] for name, v in section["variants"].items()]
    lines += _table(["variant", "median wall", "median client CPU"], rows)
    rows = [
        [
            name,
            run["max_in_flight"],
            run["peak_in_flight"],
            run["final_in_flight"],
            run["rate_limited_calls"],
            run["ledger_429"],
            run["batch_calls"],
            run["emulator_max_in_flight"],
        ]
        for name, runs in section["runs"].items()
        for run in runs
    ]
    header = ["run", "max_in_flight", "peak", "final", "429s (manifest)", "429s (ledger)", "batch calls", "server max"]
    lines += ["", *_table(header, rows)]
    lines += ["", f"Wall ratio (adaptive / told the limit, median of rounds): {section['wall_ratio']}x."]
    return lines


def render_release(results: dict[str, Any]) -> str:
    """Section 9 alone, for its own block of the README."""
    release = results["sections"]["release"]
    lines = [
        _produced_by(results["meta"]),
        "",
        *_table(
            ["measurement", "target", "result", "met"],
            [_release_summary_row(release), *_release_target_rows(release)],
        ),
        *_release_lines(release),
    ]
    return "\n".join(lines) + "\n"


def _release_summary_row(release: dict[str, Any]) -> list[Any]:
    clean, retry, killed = release["clean"], release["retry"], release["killed"]
    return [
        f"9. Full release, N={release['datasets']:,}, K={release['indicators']}, "
        f"{release['latency_ms']:g} ms{_load(release)}",
        release["target"],
        f"clean {_s(clean['seconds'])} ({clean['ratio_to_bound']}x the latency bound "
        f"{_s(clean['latency_bound_seconds'])}), "
        f"peak RSS {clean['maxrss_mb']} MB; killed at {killed['parts_at_kill']}/{release['parts']} parts, the retry "
        f"took {_s(retry['seconds'])} ({retry['time_vs_clean']}x clean) and {retry['scored_calls']} scored calls "
        f"({retry['calls_vs_clean']}x clean, expected {retry['expected_scored_calls']}); "
        f"identical: {retry['identical_to_clean']}, .partial left: {retry['partial_files_left']}",
        _ok(release["met"]),
    ]


def _release_target_rows(release: dict[str, Any]) -> list[list[Any]]:
    """Issue 24's rows of the clean run (client CPU, elapsed against its bounds, peak RSS), when measured."""
    name = f"9. Full release, N={release['datasets']:,}, K={release['indicators']}"
    return [
        [f"{name}: {row['measurement']}", row["target"], row["result"], _ok(row["met"])]
        for row in release.get("targets", [])
    ]


def render_columnar(results: dict[str, Any]) -> str:
    """Section 10 alone, for its own block of the README."""
    columnar = results["sections"]["columnar"]
    lines = [
        _produced_by(results["meta"]),
        "",
        *_table(["measurement", "target", "result", "met"], _columnar_summary_rows(columnar)),
        *_columnar_lines(columnar),
    ]
    return "\n".join(lines) + "\n"


def _columnar_summary_rows(columnar: dict[str, Any]) -> list[list[Any]]:
    """One row per output: its client CPU per scored row next to the floor's, and the ratio."""
    floor = columnar["cpu_per_row_us"]["floor"]
    return [
        [
            f"10. Client CPU per scored row, {target['output']}, N={columnar['datasets']:,}, "
            f"K={columnar['indicators']}{_load(columnar)}",
            target["target"],
            f"{columnar['cpu_per_row_us'][target['output']]} us per row against the floor's {floor} us: "
            f"{target['ratio']}x",
            _ok(target["met"]),
        ]
        for target in columnar["targets"]
    ]


def _columnar_lines(columnar: dict[str, Any]) -> list[str]:
    """Section 10: CPU per scored row, ratio to the floor and bytes of each variant."""
    lines = [
        "",
        f"**10. Client CPU per scored row**, N={columnar['datasets']:,} datasets x K={columnar['indicators']} "
        f"indicators ({columnar['rows']:,} rows, {columnar['batch_calls']} batch calls), {columnar['rounds']} "
        f"rounds. {columnar['method']}.",
        "",
    ]
    rows = [
        [
            name,
            f"{per_row} us",
            f"{columnar['ratios'][name]}x" if name in columnar["ratios"] else "1x (the floor)",
            f"{columnar['bytes'].get(name, 0):,}" + (" (JSON answers)" if name == "floor" else ""),
        ]
        for name, per_row in columnar["cpu_per_row_us"].items()
    ]
    lines += _table(["variant", "client CPU per scored row", "ratio to the floor", "bytes"], rows)
    if "emulator_ms_per_100x100_call" in columnar:
        per_call = columnar["emulator_ms_per_100x100_call"]
        lines += [
            "",
            f"The emulator's CPU per batch call of 100 datasets x 100 indicators: {per_call} ms "
            f"({round(per_call * 1000 / 10_000, 3)} us per scored row; its own process, not the client's).",
        ]
    for output, ranked in columnar.get("profile", {}).items():
        top = ", ".join(f"`{entry['function']}` {entry['share_pct']} %" for entry in ranked)
        title = f"Where the {output} run's CPU goes (cProfile, every thread's CPU clock, own time, top {len(ranked)})"
        lines += ["", f"{title}: {top}."]
    return lines


def _release_lines(release: dict[str, Any]) -> list[str]:
    """Section 9: the clean run against its latency bound, then the killed run and its retry."""
    clean, killed, retry = release["clean"], release["killed"], release["retry"]
    lines = [
        "",
        f"**9. Full release**, N={release['datasets']:,} datasets x K={release['indicators']} indicators, "
        f"{release['latency_ms']:g} ms per call, flat Parquet in {release['parts']} parts of at most "
        f"{release['partition_size']:,} datasets, {release['max_in_flight']} calls in flight. {release['method']}.",
        "",
    ]
    rows = [
        [
            "clean",
            _s(clean["seconds"]),
            f"{clean['batch_calls']} (min {clean['min_batch_calls']})",
            clean["scored_calls"],
            f"{clean['maxrss_mb']} MB ({clean['maxrss_after_imports_mb']} MB after imports)",
            f"{release['parts']} written",
        ],
        [
            "killed (SIGKILL)",
            _s(killed["seconds_to_kill"]),
            "",
            "",
            "",
            f"{killed['parts_at_kill']} committed, {killed['partial_files_left']} `.partial` left",
        ],
        [
            "retry",
            f"{_s(retry['seconds'])} ({retry['time_vs_clean']}x clean)",
            "",
            f"{retry['scored_calls']} ({retry['calls_vs_clean']}x clean; expected {retry['expected_scored_calls']})",
            f"{retry['maxrss_mb']} MB",
            f"{retry['reused_parts']} reused, {retry['fetched_parts']} fetched, "
            f"{retry['partial_files_left']} `.partial` left, identical to clean: {retry['identical_to_clean']}",
        ],
    ]
    lines += _table(["run", "elapsed", "batch calls", "scored calls", "peak RSS (ru_maxrss)", "parts"], rows)
    lines += [
        "",
        f"Latency bound: {clean['batch_calls']} batch calls x {release['latency_ms']:g} ms / "
        f"{release['max_in_flight']} in flight = {_s(clean['latency_bound_seconds'])}; the clean run took "
        f"{clean['ratio_to_bound']}x that ({clean['records']:,} rows, {clean['bytes']:,} bytes; the emulator served "
        f"at most {clean['emulator_max_in_flight']} calls at once).",
    ]
    if "client_cpu_seconds" in clean:
        lines += [
            "",
            f"CPU: the clean run's client used {_s(clean['client_cpu_seconds'])} and the emulator "
            f"{_s(clean['emulator_cpu_seconds'])} (its start-up included); the retry's "
            f"{_s(retry['client_cpu_seconds'])} and {_s(retry['emulator_cpu_seconds'])}. Where their sum over the "
            "usable cores exceeds the latency bound, the run is CPU-bound: encoding, decoding and writing the rows, "
            "not waiting for the API.",
        ]
    return lines


def _dlt_lines(dlt: dict[str, Any]) -> list[str]:
    """Section 7: timings and calls side by side, then the three faults."""
    lines = ["", f"**7. dlt peer**, N={dlt['datasets']:,}, K={dlt['indicators']}, {dlt['rounds']} rounds", ""]
    rows = [
        [
            name,
            _s(summary["median_wall_s"]),
            _s(summary["median_cpu_s"]),
            dlt["calls"][name]["batch_calls"],
            dlt["calls"][name]["versions_calls"],
            dlt["calls"][name]["token_requests"],
            dlt["calls"][name]["connections"],
        ]
        for name, summary in dlt["variants"].items()
    ]
    header = ["variant", "median wall", "median client CPU", "batch", "/versions", "tokens", "TCP conns"]
    lines += _table(header, rows)
    ratios = ", ".join(f"{name} {value}x" for name, value in dlt["ratios"].items())
    lines += ["", f"Ratios: {ratios}. {dlt['method']}"]
    lines += ["", f"Faults on the 2nd batch call (N={dlt['faults_datasets']}):", ""]
    names = [k for k in dlt["faults"][0] if k != "fault"]
    rows = [
        [
            case["fault"],
            *(f"{case[n]['outcome']} ({case[n]['seconds']} s, {case[n]['batch_calls']} batch calls)" for n in names),
        ]
        for case in dlt["faults"]
    ]
    lines += _table(["case", *names], rows)
    errors = [f"{case['fault']}: {case[n]['error']}" for case in dlt["faults"] for n in names if "error" in case[n]]
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    return lines


def update_readme(readme: Path, results: dict[str, Any]) -> None:
    """Write the figures between the README's markers: sections 1 to 8 in the main block, sections 9 and 10
    each in its own; a run that did not measure a block's sections leaves that block as it was."""
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    sections = results["sections"]
    others = {name: section for name, section in sections.items() if name not in OWN_BLOCKS}
    if others:
        text = _replace_block(text, START, END, render({**results, "sections": others}))
    if "release" in sections:
        text = _replace_block(text, RELEASE_START, RELEASE_END, render_release(results))
    if "columnar" in sections:
        text = _replace_block(text, COLUMNAR_START, COLUMNAR_END, render_columnar(results))
    readme.write_text(text, encoding="utf-8")


def _replace_block(text: str, start: str, end: str, markdown: str) -> str:
    """Replace what is between the markers (appending the markers if absent)."""
    block = f"{start}\n{markdown}{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.DOTALL)
    return text.rstrip("\n") + "\n\n" + block + "\n"
