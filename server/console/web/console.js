// The console page: plain JS, no build step. The session is an HttpOnly
// cookie; every change sends the CSRF token the session endpoint gives.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (method !== "GET") {
    options.headers["X-CSRF-Token"] = csrf;
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, options);
  const value = await response.json().catch(() => ({}));
  if (response.status === 401) { location.href = "/login"; }
  if (!response.ok) throw new Error(value.error || response.statusText);
  return value;
}

const HISTORY = 120;  // samples kept on the charts (2 min at 1 Hz)
const PHASES = ["wait_ms", "wait_run_ms", "dispatch_ms", "timers_ms", "run_ms", "tick_ms"];
let frameChart, dispatchChart;

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];

function lineChart(canvas, labels) {
  return new Chart(canvas, {
    type: "line",
    data: {
      labels: [],
      datasets: labels.map((label, i) => ({
        label, data: [], pointRadius: 0, borderWidth: 2, borderColor: COLOURS[i], backgroundColor: COLOURS[i],
      })),
    },
    options: { animation: false, responsive: true, scales: { y: { beginAtZero: true } } },
  });
}

function push(chart, label, values) {
  chart.data.labels.push(label);
  chart.data.datasets.forEach((set, i) => set.data.push(values[i]));
  if (chart.data.labels.length > HISTORY) {
    chart.data.labels.shift();
    chart.data.datasets.forEach((set) => set.data.shift());
  }
  chart.update();
}

let lastFrame = null;
function showStats(s) {
  $("node").textContent = `${s.node} (${s.role})`;
  $("strategy_now").textContent = s.strategy;
  $("fps_target").textContent = s.fps_target;
  const f = s.frame;
  const fps = lastFrame ? ((f.frame - lastFrame.frame) / (s.at - lastFrame.at)).toFixed(1) : "";
  lastFrame = { frame: f.frame, at: s.at };
  $("fps_now").textContent = fps;
  $("frame_ms").textContent = (f.frame_ms || 0).toFixed(2);
  $("overruns").textContent = f.overruns;
  $("alive").textContent = f.alive;
  $("switches").textContent = f.switches;
  $("updated").textContent = new Date(s.at * 1000).toLocaleTimeString();
  const label = new Date(s.at * 1000).toLocaleTimeString();
  push(frameChart, label, PHASES.map((p) => f[p] || 0));
  const d = s.dispatch[s.strategy] || {};
  const lat = d.dispatch_latency || {};
  push(dispatchChart, label, [lat.p50_us || 0, lat.p99_us || 0]);
  dispatchChart.data.datasets[0].label = `${s.strategy} p50`;
  dispatchChart.data.datasets[1].label = `${s.strategy} p99`;
  document.body.dataset.pushes = String(Number(document.body.dataset.pushes || 0) + 1);
}

function connectPush() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "stats") showStats(message.stats);
  };
  ws.onclose = () => setTimeout(connectPush, 2000);
}

function message(text, error) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}

async function applySettings() {
  const wanted = { dispatch_strategy: $("strategy").value, fps: $("fps").value, run_budget: $("run_budget").value };
  const role = $("scope").value;
  try {
    for (const [name, value] of Object.entries(wanted)) {
      const current = settings[name];
      if (String(current) === String(value) && !role) continue;
      if (role) {
        // Every node of the role, through the cluster directory: each answers for itself.
        const result = await api("POST", "/api/setting", { name, value, role });
        message(Object.entries(result.nodes).map(([node, a]) => `${node}: ${a.error || a.value}`).join("; "));
        continue;
      }
      const result = await api("POST", "/api/setting", { name, value });
      settings[name] = result.value;
      // In force on the node once the answer comes: shown now, not at the next push.
      if (name === "dispatch_strategy") $("strategy_now").textContent = result.value;
      if (name === "fps") $("fps_target").textContent = result.value;
      message(`${name}: ${result.old} -> ${result.value}`);
    }
  } catch (e) {
    message(e.message, true);
  }
}

let settings = {};
async function loadSettings() {
  const s = await api("GET", "/api/stats");
  settings = s.settings;
  const select = $("strategy");
  select.innerHTML = "";
  for (const name of Object.keys(s.dispatch)) {
    const option = document.createElement("option");
    option.value = option.textContent = name;
    select.appendChild(option);
  }
  select.value = s.strategy;
  $("fps").value = settings.fps;
  $("run_budget").value = settings.run_budget;
  showStats(s);
}

// Every live node of the directory, asked by this node with this session;
// refreshed every 2 s while the page is open (a node alone has no cluster).
async function loadCluster() {
  const body = $("cluster").querySelector("tbody");
  let cluster;
  try { cluster = await api("GET", "/api/cluster"); } catch (e) {
    body.innerHTML = "";
    body.insertRow().insertCell().textContent = e.message;
    return;
  }
  body.innerHTML = "";
  for (const [role, nodes] of Object.entries(cluster)) {
    for (const [name, s] of Object.entries(nodes)) {
      const row = body.insertRow();
      if (s.error) { for (const text of [role, name, s.error]) row.insertCell().textContent = text; continue; }
      const f = s.frame;
      const p99 = (s.dispatch[s.strategy] || {}).dispatch_latency || {};
      for (const text of [role, name, s.strategy, `${(f.fps || 0).toFixed(1)} (${s.fps_target})`,
        (f.frame_ms || 0).toFixed(2), f.overruns, f.alive, f.switches, (p99.p99_us || 0).toFixed(0)]) {
        row.insertCell().textContent = text;
      }
    }
  }
}

async function loadTasklets() {
  const body = $("tasklets").querySelector("tbody");
  body.innerHTML = "";
  for (const t of await api("GET", "/api/tasklets")) {
    const row = body.insertRow();
    for (const text of [t.id, t.name, t.state, t.where]) row.insertCell().textContent = text;
    row.title = t.stack;
    const kill = document.createElement("button");
    kill.textContent = "kill";
    kill.onclick = async () => {
      try { await api("POST", "/api/kill", { id: t.id }); loadTasklets(); } catch (e) { message(e.message, true); }
    };
    row.insertCell().appendChild(kill);
  }
}

let profileRows = [];
function showProfile(key) {
  if (key) profileRows.sort((a, b) => (typeof a[key] === "string" ? a[key].localeCompare(b[key]) : b[key] - a[key]));
  const body = $("profile_rows").querySelector("tbody");
  body.innerHTML = "";
  for (const r of profileRows) {
    const row = body.insertRow();
    for (const text of [r.function, r.self, r.total, r.self_pct.toFixed(1), r.total_pct.toFixed(1)]) {
      row.insertCell().textContent = text;
    }
  }
}

async function runProfile() {
  message("profiling...");
  try {
    const result = await api("POST", "/api/profile", { seconds: Number($("profile_seconds").value) });
    profileRows = result.rows;
    showProfile();
    message(`${result.samples} samples in ${result.seconds} s`);
  } catch (e) { message(e.message, true); }
}

async function runCode() {
  try {
    const result = await api("POST", "/api/exec", { code: $("code").value });
    $("output").textContent = result.output;
  } catch (e) { $("output").textContent = e.message; }
}

async function loadLogs() {
  $("logs").textContent = (await api("GET", "/api/logs?count=200")).map((l) => l.line).join("\n");
}

async function setupConsole() {
  const session = await api("GET", "/api/session");
  csrf = session.csrf;
  $("who").textContent = `${session.name} (${session.role})`;
  frameChart = lineChart($("chart_frame"), PHASES);
  dispatchChart = lineChart($("chart_dispatch"), ["p50", "p99"]);
  await loadSettings();
  connectPush();
  $("apply").onclick = applySettings;
  $("refresh_tasklets").onclick = loadTasklets;
  $("refresh_cluster").onclick = loadCluster;
  $("profile").onclick = runProfile;
  $("run_code").onclick = runCode;
  $("refresh_logs").onclick = loadLogs;
  $("logout").onclick = async () => { await api("POST", "/api/logout"); location.href = "/login"; };
  document.querySelectorAll("#profile_rows th[data-key]").forEach((th) => { th.onclick = () => showProfile(th.dataset.key); });
  loadTasklets();
  loadLogs();
  loadCluster();
  setInterval(loadCluster, 2000);
}

setupConsole();
