// A destination's recent history from the stats API (served from rollups): attempts per
// bucket by outcome, and latency p50/p95, over the last hour, day or week.
import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import type { DestinationStats, StatsWindow } from "../api/endpoints";
import { useApi } from "../context";
import { useLoad } from "../hooks";
import { Failure } from "../ui/bits";
import { percent } from "./state";

const WINDOWS: [StatsWindow, string][] = [
  ["1h", "Last hour"],
  ["24h", "Last day"],
  ["7d", "Last week"],
];

export function Charts({ id }: { id: string }) {
  const api = useApi();
  const [window, setWindow] = useState<StatsWindow>("1h");
  const stats = useLoad(() => api.stats(id, window), [api, id, window], 10000);
  const s = stats.data;
  return (
    <section class="panel" aria-label="Charts">
      <div class="title-row">
        <h2>Activity</h2>
        <div class="segmented" role="group" aria-label="Window">
          {WINDOWS.map(([value, label]) => (
            <button key={value} type="button" aria-pressed={window === value} onClick={() => setWindow(value)}>
              {label}
            </button>
          ))}
        </div>
      </div>
      <Failure error={stats.error} />
      {s ? (
        <>
          <p class="figures">
            <span>
              {s.attempts} {s.attempts === 1 ? "attempt" : "attempts"}
            </span>
            <span>success {percent(s.success_rate)}</span>
            <span>p50 {ms(s.latency_ms.p50)}</span>
            <span>p95 {ms(s.latency_ms.p95)}</span>
            <span>
              under way {s.unfinished.pending + s.unfinished.delivering + s.unfinished.failed}
            </span>
          </p>
          <div class="charts">
            <Chart title="Attempts" stats={s} kind="attempts" />
            <Chart title="Latency (ms)" stats={s} kind="latency" />
          </div>
        </>
      ) : null}
    </section>
  );
}

function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `≤ ${value} ms`;
}

function Chart({ title, stats, kind }: { title: string; stats: DestinationStats; kind: "attempts" | "latency" }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const xs = stats.series.map((p) => Date.parse(p.at) / 1000);
    const data: uPlot.AlignedData =
      kind === "attempts"
        ? [xs, stats.series.map((p) => p.attempts_ok), stats.series.map((p) => p.attempts_failed)]
        : [xs, stats.series.map((p) => p.latency_p50_ms ?? null), stats.series.map((p) => p.latency_p95_ms ?? null)];
    const bars = uPlot.paths.bars?.({ size: [0.45, 24], align: 0 });
    const points = { show: true, size: 5 };
    const series: uPlot.Series[] =
      kind === "attempts"
        ? [
            {},
            { label: "succeeded", stroke: "#1a7f37", fill: "rgba(26,127,55,0.6)", paths: bars, points: { show: false } },
            { label: "failed", stroke: "#cf222e", fill: "rgba(207,34,46,0.6)", paths: bars, points: { show: false } },
          ]
        : [{}, { label: "p50", stroke: "#0969da", spanGaps: true, points }, { label: "p95", stroke: "#9a6700", spanGaps: true, points }];
    const plot = new uPlot({ width: el.clientWidth || 300, height: 180, series, legend: { live: false } }, data, el);
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth || 300, height: 180 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [stats, kind]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} data-chart={kind} />
    </figure>
  );
}
