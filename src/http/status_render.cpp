#include "ecu2mqtt/http/status_render.hpp"

#include <charconv>
#include <cmath>

namespace ecu2mqtt {
namespace {

using nlohmann::json;

json optional_number(const std::optional<double>& value) {
    return value ? json(*value) : json(nullptr);
}

json unknown_fields(const UnknownFields& fields) {
    json out = json::object();
    for (const auto& [key, value] : fields)
        out[key] = value;
    return out;
}

std::string number(double value) {
    if (!std::isfinite(value))
        return std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf");
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    return ec == std::errc{} ? std::string(buf, end) : "NaN";
}

// Label values come from ECUs: escaped as the format asks, and anything that is not printable
// ASCII replaced so that no scraper has to cope with broken UTF-8.
std::string label_value(std::string_view text) {
    std::string out;
    for (const char c : text.substr(0, 128)) {
        if (c == '\\' || c == '"')
            out += {'\\', c};
        else if (c == '\n')
            out += "\\n";
        else if (c < 0x20 || c > 0x7e)
            out += '?';
        else
            out += c;
    }
    return out;
}

class MetricsWriter {
  public:
    // Starts a metric family; its samples follow.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        name_ = name;
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void sample(std::initializer_list<std::pair<std::string_view, std::string>> labels,
                double value) {
        out_ += name_;
        if (labels.size() > 0) {
            out_ += '{';
            bool first = true;
            for (const auto& [key, text] : labels) {
                if (!first)
                    out_ += ',';
                first = false;
                out_ += key;
                out_ += "=\"";
                out_ += label_value(text);
                out_ += '"';
            }
            out_ += '}';
        }
        out_ += ' ';
        out_ += number(value);
        out_ += '\n';
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
    std::string name_;
};

constexpr double kJoulesPerKwh = 3.6e6;

// "mqtt://user:secret@host:1883" -> "mqtt://host:1883": a password must never reach the page.
std::string without_credentials(std::string_view url) {
    const auto scheme_end = url.find("://");
    const auto start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    const auto at = url.rfind('@');
    if (at == std::string_view::npos || at < start)
        return std::string(url);
    return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}

} // namespace

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string script_safe_json(const json& value) {
    const std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string out;
    out.reserve(text.size());
    // These characters only occur inside JSON strings, where \u escapes mean the same.
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '<')
            out += "\\u003c";
        else if (c == '>')
            out += "\\u003e";
        else if (c == '&')
            out += "\\u0026";
        else if (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                 (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')) {
            out += text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
            i += 2;
        } else
            out += c;
    }
    return out;
}

json status_json(const StatusSnapshot& s) {
    json counters{{"decode_errors", s.counters.decode_errors},
                  {"publishes", s.counters.publishes},
                  {"publish_failures", s.counters.publish_failures},
                  {"connections_opened", s.counters.connections_opened},
                  {"connections_refused", s.counters.connections_refused},
                  {"connections_evicted", s.counters.connections_evicted},
                  {"ema_relayed", s.counters.ema_relayed},
                  {"ema_fallbacks", s.counters.ema_fallbacks},
                  {"uploads", json::array()},
                  {"replies", json::object()}};
    for (const auto& [key, count] : s.counters.uploads)
        counters["uploads"].push_back({{"ecu", key.first}, {"port", key.second}, {"count", count}});
    for (const auto& [rule, count] : s.counters.replies)
        counters["replies"][rule] = count;

    json ecus = json::array();
    for (const auto& ecu : s.ecus) {
        json inverters = json::array();
        for (const auto& inverter : ecu.inverters) {
            json channels = json::array();
            for (const auto& c : inverter.channels)
                channels.push_back({{"channel", c.channel},
                                    {"voltage_v", c.voltage_v},
                                    {"current_a", c.current_a},
                                    {"power_w", c.power_w}});
            inverters.push_back({{"uid", inverter.uid},
                                 {"model", inverter.model},
                                 {"temperature_c", inverter.temperature_c},
                                 {"frequency_hz", inverter.frequency_hz},
                                 {"power_w", inverter.power_w},
                                 {"channels", channels},
                                 {"unknown", unknown_fields(inverter.unknown)}});
        }
        json curve = json::array();
        for (const auto& point : ecu.power_curve)
            curve.push_back({point.second_of_day, point.power_w});
        ecus.push_back({{"id", ecu.id},
                        {"model", ecu.model},
                        {"peer_address", ecu.peer_address},
                        {"peer_port", ecu.peer_port},
                        {"local_port", ecu.local_port},
                        {"received", ecu.received_unix},
                        {"last_upload_age_s",
                         ecu.received_unix ? json(s.now_unix - ecu.received_unix) : json(nullptr)},
                        {"ecu_timestamp", ecu.ecu_timestamp},
                        {"clock_offset_s", optional_number(ecu.clock_offset_s)},
                        {"ecu_day_rule", ecu.ecu_day_rule},
                        {"poll_state", ecu.poll_state},
                        {"reply_rule", ecu.reply_rule},
                        {"reply", ecu.reply},
                        {"power_w", ecu.power_w},
                        {"today_energy_kwh", optional_number(ecu.today_energy_kwh)},
                        {"lifetime_energy_kwh", ecu.lifetime_energy_kwh},
                        {"availability", ecu.availability},
                        {"power_curve", curve},
                        {"inverters", inverters},
                        {"unknown", unknown_fields(ecu.unknown)}});
    }

    json problems = json::array();
    for (const auto& entry : s.recent_problems)
        problems.push_back({{"level", entry.level}, {"line", entry.line}});

    return {{"version", s.version},
            {"now", s.now_unix},
            {"started", s.started_unix},
            {"uptime_s", s.now_unix - s.started_unix},
            {"mqtt",
             {{"broker", without_credentials(s.mqtt.broker)},
              {"connected", s.mqtt.connected},
              {"last_error", s.mqtt.last_error},
              {"spooled", s.mqtt.spooled},
              {"spool_dropped", s.mqtt.spool_dropped},
              {"spool_bytes", s.mqtt.spool_bytes ? json(*s.mqtt.spool_bytes) : json(nullptr)},
              {"pending_readings", s.mqtt.pending_readings},
              {"oldest_pending",
               s.mqtt.oldest_pending_unix ? json(*s.mqtt.oldest_pending_unix) : json(nullptr)}}},
            {"store",
             {{"file", s.store.file},
              {"commits", s.store.commits},
              {"failed_writes", s.store.failed_writes},
              {"writable", s.store.writable},
              {"last_error", s.store.last_error},
              {"free_bytes", s.store.free_bytes ? json(*s.store.free_bytes) : json(nullptr)},
              {"low_space_bytes", s.store.low_space_bytes},
              {"low_space", s.store.low_space()}}},
            {"counters", counters},
            {"dns",
             {{"name", s.dns.name},
              {"checked", s.dns.checked},
              {"points_here", s.dns.points_here},
              {"verdict", s.dns.verdict},
              {"addresses", s.dns.addresses},
              {"host_addresses", s.dns.host_addresses},
              {"message", s.dns.message}}},
            {"ecus", ecus},
            {"recent_problems", problems}};
}

std::string prometheus_metrics(const StatusSnapshot& s) {
    MetricsWriter m;
    m.family("ecu2mqtt_build_info", "gauge", "Always 1; the version in a label.");
    m.sample({{"version", s.version}}, 1);
    m.family("ecu2mqtt_start_time_seconds", "gauge", "When the service started, Unix time.");
    m.sample({}, static_cast<double>(s.started_unix));

    m.family("ecu2mqtt_uploads_total", "counter", "Real-time uploads received, by ECU and port.");
    for (const auto& [key, count] : s.counters.uploads)
        m.sample({{"ecu", key.first}, {"port", std::to_string(key.second)}},
                 static_cast<double>(count));
    m.family("ecu2mqtt_replies_total", "counter",
             "Replies sent to ECUs, by the rule that chose them.");
    for (const auto& [rule, count] : s.counters.replies)
        m.sample({{"rule", rule}}, static_cast<double>(count));
    const auto counter = [&m](std::string_view name, std::string_view help, std::uint64_t value) {
        m.family(name, "counter", help);
        m.sample({}, static_cast<double>(value));
    };
    counter("ecu2mqtt_decode_errors_total", "Messages that could not be decoded.",
            s.counters.decode_errors);
    counter("ecu2mqtt_mqtt_publishes_total", "Readings the broker acknowledged.",
            s.counters.publishes);
    counter("ecu2mqtt_mqtt_publish_failures_total", "Publishes that failed.",
            s.counters.publish_failures);
    counter("ecu2mqtt_connections_opened_total", "ECU connections accepted.",
            s.counters.connections_opened);
    counter("ecu2mqtt_connections_refused_total", "Connections refused (peer not allowed).",
            s.counters.connections_refused);
    counter("ecu2mqtt_connections_evicted_total",
            "Idle connections closed to make room at the connection limit.",
            s.counters.connections_evicted);
    counter("ecu2mqtt_ema_relayed_total", "Full proxy: replies from EMA passed to the ECU.",
            s.counters.ema_relayed);
    counter("ecu2mqtt_ema_fallbacks_total",
            "Full proxy: EMA did not answer in time, the fake reply was sent.",
            s.counters.ema_fallbacks);
    counter("ecu2mqtt_spool_dropped_total", "Readings dropped because the spool was full.",
            s.mqtt.spool_dropped);
    counter("ecu2mqtt_store_commits_total", "Transactions written to the database.",
            s.store.commits);
    counter("ecu2mqtt_store_failed_writes_total",
            "Writes to the database that failed; their uploads were answered to be sent again.",
            s.store.failed_writes);

    m.family("ecu2mqtt_mqtt_connected", "gauge", "1 while connected to the broker.");
    m.sample({}, s.mqtt.connected ? 1 : 0);
    m.family("ecu2mqtt_store_writable", "gauge",
             "1 while the database takes writes; 0 while they fail (a full disk, say).");
    m.sample({}, s.store.writable ? 1 : 0);
    if (s.store.free_bytes) {
        m.family("ecu2mqtt_store_free_bytes", "gauge",
                 "Free space on the state directory's file system; the status page warns below "
                 "ecu2mqtt_store_low_space_bytes.");
        m.sample({}, static_cast<double>(*s.store.free_bytes));
        m.family("ecu2mqtt_store_low_space_bytes", "gauge",
                 "Free space below which the database is kept compact and a warning shows.");
        m.sample({}, static_cast<double>(s.store.low_space_bytes));
    }
    m.family("ecu2mqtt_spool_entries", "gauge", "Readings waiting in the spool for the broker.");
    m.sample({}, static_cast<double>(s.mqtt.spooled));
    if (s.mqtt.spool_bytes) {
        m.family("ecu2mqtt_spool_bytes", "gauge", "Size of the spool on disk.");
        m.sample({}, static_cast<double>(*s.mqtt.spool_bytes));
    }

    m.family("ecu2mqtt_ecu_power_watts", "gauge", "Power the ECU reported in its last upload.");
    // An ECU with no trustworthy reading yet (its uploads so far clock-suspect) has no value to
    // show, and 0 would read as a real counter.
    for (const auto& ecu : s.ecus)
        if (ecu.received_unix)
            m.sample({{"ecu", ecu.id}}, ecu.power_w);
    m.family("ecu2mqtt_ecu_lifetime_energy_joules", "gauge",
             "Lifetime energy as the state topic shows it, the checked counter (kWh times 3.6e6).");
    for (const auto& ecu : s.ecus)
        if (ecu.received_unix)
            m.sample({{"ecu", ecu.id}}, ecu.lifetime_energy_kwh * kJoulesPerKwh);
    m.family("ecu2mqtt_ecu_today_energy_joules", "gauge", "Energy produced today.");
    for (const auto& ecu : s.ecus)
        if (ecu.today_energy_kwh)
            m.sample({{"ecu", ecu.id}}, *ecu.today_energy_kwh * kJoulesPerKwh);
    m.family("ecu2mqtt_ecu_last_upload_age_seconds", "gauge", "Time since the last upload.");
    for (const auto& ecu : s.ecus)
        if (ecu.received_unix)
            m.sample({{"ecu", ecu.id}}, static_cast<double>(s.now_unix - ecu.received_unix));
    m.family("ecu2mqtt_ecu_online", "gauge", "1 while the ECU is available.");
    for (const auto& ecu : s.ecus)
        m.sample({{"ecu", ecu.id}}, ecu.availability == "online" ? 1 : 0);
    m.family("ecu2mqtt_ecu_clock_offset_seconds", "gauge",
             "The ECU's clock minus this host's clock.");
    for (const auto& ecu : s.ecus)
        if (ecu.clock_offset_s)
            m.sample({{"ecu", ecu.id}}, *ecu.clock_offset_s);

    const auto per_inverter = [&](std::string_view name, std::string_view help, auto field) {
        m.family(name, "gauge", help);
        for (const auto& ecu : s.ecus)
            for (const auto& inverter : ecu.inverters)
                m.sample({{"ecu", ecu.id}, {"inverter", inverter.uid}}, field(inverter));
    };
    per_inverter("ecu2mqtt_inverter_power_watts", "Inverter power, sum of its channels.",
                 [](const InverterSnapshot& i) { return i.power_w; });
    per_inverter("ecu2mqtt_inverter_temperature_celsius", "Inverter temperature.",
                 [](const InverterSnapshot& i) { return i.temperature_c; });
    per_inverter("ecu2mqtt_inverter_frequency_hertz", "Grid frequency the inverter measured.",
                 [](const InverterSnapshot& i) { return i.frequency_hz; });

    const auto per_channel = [&](std::string_view name, std::string_view help, auto field) {
        m.family(name, "gauge", help);
        for (const auto& ecu : s.ecus)
            for (const auto& inverter : ecu.inverters)
                for (const auto& c : inverter.channels)
                    m.sample({{"ecu", ecu.id},
                              {"inverter", inverter.uid},
                              {"channel", std::to_string(c.channel)}},
                             field(c));
    };
    per_channel("ecu2mqtt_channel_power_watts", "Power of one inverter channel (panel).",
                [](const ChannelSnapshot& c) { return c.power_w; });
    per_channel("ecu2mqtt_channel_voltage_volts", "Voltage of one inverter channel.",
                [](const ChannelSnapshot& c) { return c.voltage_v; });
    per_channel("ecu2mqtt_channel_current_amperes", "Current of one inverter channel.",
                [](const ChannelSnapshot& c) { return c.current_a; });
    return m.take();
}

std::string status_page(const StatusSnapshot& status, std::string_view base_path,
                        std::string_view nonce) {
    std::string page = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
@BASE@<title>ecu2mqtt</title>
<link rel="icon" href="data:,">
<style>
:root{--bg:#f4f6f8;--card:#fff;--fg:#1c2430;--muted:#667085;--line:#e3e7ec;--ok:#1a7f37;
--okbg:#e7f6ec;--bad:#b42318;--badbg:#fdecea;--warn:#9a6700;--accent:#f59e0b;--accent2:#fde68a}
@media (prefers-color-scheme:dark){:root{--bg:#111418;--card:#1b2027;--fg:#e6e9ee;--muted:#98a2b3;
--line:#2b323c;--okbg:#12301d;--badbg:#3a1513;--ok:#4ade80;--bad:#f87171;--accent2:#78350f}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,
"Segoe UI",Roboto,sans-serif}
header{display:flex;align-items:baseline;gap:12px;flex-wrap:wrap;padding:16px 20px 4px}
header h1{margin:0;font-size:22px}
header .sub{color:var(--muted)}
main{padding:8px 20px 24px;display:grid;grid-template-columns:minmax(0,1fr);gap:16px;
max-width:1200px}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px}
h2{margin:0 0 10px;font-size:16px;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
h3{margin:14px 0 6px;font-size:14px;color:var(--muted);font-weight:600}
.check{border-radius:8px;padding:10px 14px;font-weight:600}
.check.ok{background:var(--okbg);color:var(--ok)}
.check.bad{background:var(--badbg);color:var(--bad)}
.check.warn{background:#fff4d6;color:var(--warn)}
.check.wait{background:var(--line);color:var(--muted)}
.check.low{background:#fff4d6;color:var(--warn)}
.check small{display:block;font-weight:400;color:var(--fg);margin-top:2px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:8px 16px}
.fact .k{color:var(--muted);font-size:12px}
.fact .v{font-size:15px;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.big .v{font-size:22px;font-weight:600}
.badge{font-size:12px;border-radius:999px;padding:2px 9px;font-weight:600}
.badge.ok{background:var(--okbg);color:var(--ok)}
.badge.bad{background:var(--badbg);color:var(--bad)}
.muted{color:var(--muted);font-weight:400}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{text-align:right;padding:5px 8px;border-bottom:1px solid var(--line);white-space:nowrap}
th:first-child,th:nth-child(2),tr.first td:first-child,tr.first td:nth-child(2){text-align:left}
td[rowspan]{vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:12px}
.scroll{overflow-x:auto}
svg.curve{width:100%;height:auto;display:block;max-height:260px}
svg.curve .axis{stroke:var(--line)}
svg.curve text{fill:var(--muted);font-size:11px}
svg.curve .area{fill:var(--accent2);opacity:.6}
svg.curve .line{fill:none;stroke:var(--accent);stroke-width:2}
svg.curve .dot{fill:var(--accent)}
.log{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;max-height:320px;overflow:auto;
margin:0;padding:0;list-style:none}
.log li{padding:3px 0;border-bottom:1px solid var(--line);white-space:pre-wrap;overflow-wrap:anywhere}
.log .error{color:var(--bad)}.log .warn{color:var(--warn)}
#app{display:grid;grid-template-columns:minmax(0,1fr);gap:16px}
@media (max-width:600px){main,header{padding-left:8px;padding-right:8px}
section{padding:12px 10px}.grid{grid-template-columns:repeat(auto-fill,minmax(140px,1fr))}}
td.ch{color:var(--muted)}
tr.first td{border-top:2px solid var(--line)}
#stale{display:none}#stale.on{display:inline}
#script-error{display:none}#script-error.on{display:block}
</style>
</head>
<body>
<header><h1>ecu2mqtt</h1><span class="sub" id="summary"></span>
<span class="badge bad" id="stale">not updating</span></header>
<main>
<div class="check bad" id="script-error"></div>
<noscript><div class="check bad">This page needs JavaScript to show the status.
The same data: <a href="api/status">api/status</a> (JSON), <a href="metrics">metrics</a>.</div>
</noscript>
<div id="app"></div>
</main>
<script type="application/json" id="initial-status">@DATA@</script>
<script nonce="@NONCE@">
(function () {
  'use strict';
  var root = document.documentElement;
  function showError(text) {
    var box = document.getElementById('script-error');
    box.textContent = 'The page hit a script error: ' + text;
    box.className = 'check bad on';
    root.setAttribute('data-script-errors', 'yes');
  }
  window.addEventListener('error', function (e) { showError(String(e.message)); });

  // Every value is set as text, never as markup: ECUs and the network cannot inject any.
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]);
    return parent;
  }
  function fmt(value, digits, unit) {
    if (value === null || value === undefined) return 'unknown';
    return Number(value).toFixed(digits) + (unit ? ' ' + unit : '');
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return 'unknown';
    var s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    if (s < 172800) return (s / 3600).toFixed(1) + ' h';
    return (s / 86400).toFixed(1) + ' days';
  }
  function when(unix) {
    if (!unix) return 'never';
    return new Date(unix * 1000).toLocaleString();
  }
  function fact(grid, key, value, big) {
    var f = el('div', big ? 'fact big' : 'fact');
    add(f, el('div', 'k', key), el('div', 'v', value));
    grid.appendChild(f);
  }

  var SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // Today's power over the whole day, on the ECU's clock: points are [second of day, W].
  function curve(points) {
    var W = 900, H = 200, L = 52, R = 16, T = 12, B = 24;
    var chart = svg('svg', {'class': 'curve', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
                            'aria-label': 'power today'});
    var peak = 0;
    points.forEach(function (p) { peak = Math.max(peak, p[1]); });
    var step = peak <= 0 ? 100 : Math.pow(10, Math.floor(Math.log10(peak)));
    var top = Math.ceil(peak / step) * step || 100;
    function x(t) { return L + (W - L - R) * Math.min(1, Math.max(0, t / 86400)); }
    function y(w) { return T + (H - T - B) * (1 - w / top); }
    [0, 0.5, 1].forEach(function (f) {
      chart.appendChild(svg('line', {'class': 'axis', x1: L, x2: W - R, y1: y(top * f), y2: y(top * f)}));
      chart.appendChild(svg('text', {x: L - 6, y: y(top * f) + 4, 'text-anchor': 'end'},
                            Math.round(top * f) + ' W'));
    });
    for (var h = 0; h <= 24; h += 3)
      chart.appendChild(svg('text', {x: x(h * 3600), y: H - 6,
                                     'text-anchor': h === 0 ? 'start' : h === 24 ? 'end' : 'middle'},
                            (h < 10 ? '0' : '') + h + ':00'));
    if (points.length) {
      var line = points.map(function (p) { return x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1); });
      var first = x(points[0][0]).toFixed(1), last = x(points[points.length - 1][0]).toFixed(1);
      chart.appendChild(svg('polygon', {'class': 'area', points: first + ',' + y(0) + ' ' +
                                        line.join(' ') + ' ' + last + ',' + y(0)}));
      chart.appendChild(svg('polyline', {'class': 'line', points: line.join(' ')}));
      var end = points[points.length - 1];
      chart.appendChild(svg('circle', {'class': 'dot', cx: x(end[0]), cy: y(end[1]), r: 4}));
    } else {
      chart.appendChild(svg('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle'},
                            'no reading today yet'));
    }
    return chart;
  }

  function bridge(s) {
    var sec = el('section');
    var state = el('span', s.mqtt.connected ? 'badge ok' : 'badge bad',
                   s.mqtt.connected ? 'MQTT connected' : 'MQTT not connected');
    add(sec, add(el('h2', null, 'Bridge'), state));
    var g = el('div', 'grid');
    fact(g, 'Broker', s.mqtt.broker || 'none');
    if (s.mqtt.last_error) fact(g, 'Last MQTT error', s.mqtt.last_error);
    fact(g, 'Spool (waiting for broker)', s.mqtt.spooled + ' readings');
    fact(g, 'Pending readings', s.mqtt.pending_readings);
    fact(g, 'Oldest pending', s.mqtt.oldest_pending ? when(s.mqtt.oldest_pending) : 'none');
    fact(g, 'Database', s.store.file);
    fact(g, 'Database writes failed', s.store.failed_writes);
    var c = s.counters, uploads = 0;
    c.uploads.forEach(function (u) { uploads += u.count; });
    fact(g, 'Uploads', uploads);
    Object.keys(c.replies).forEach(function (rule) { fact(g, 'Replies: ' + rule, c.replies[rule]); });
    fact(g, 'Decode errors', c.decode_errors);
    fact(g, 'Connections opened', c.connections_opened);
    fact(g, 'Refused / evicted', c.connections_refused + ' / ' + c.connections_evicted);
    if (c.ema_relayed || c.ema_fallbacks)
      fact(g, 'EMA relayed / fallback', c.ema_relayed + ' / ' + c.ema_fallbacks);
    return add(sec, g);
  }

  function storeCheck(d) {
    if (d.writable && !d.low_space) return null;
    if (d.writable) {
      var low = el('div', 'check low');
      low.id = 'store-check';
      low.appendChild(document.createTextNode('\u26a0 Little space left for ' + d.file + ': ' +
          fmt(d.free_bytes / 1048576, 1, 'MiB') + ' free. Readings are still saved; once the ' +
          'disk is full they are not. Free disk space there.'));
      low.appendChild(el('small', null, 'warning below ' +
          fmt(d.low_space_bytes / 1048576, 0, 'MiB') + ' free'));
      return low;
    }
    var box = el('div', 'check bad');
    box.id = 'store-check';
    box.appendChild(document.createTextNode('\u2718 Readings cannot be saved to ' + d.file +
        '. ECUs are asked to send them again later. Free disk space there, or fix what the ' +
        'error names.'));
    box.appendChild(el('small', null, d.last_error));
    return box;
  }

  function dns(d) {
    var look = !d.checked ? ['wait', '\u2026 '] : d.points_here ? ['ok', '\u2714 ']
             : d.verdict === 'unknown' ? ['warn', '? '] : ['bad', '\u2718 '];
    var box = el('div', 'check ' + look[0]);
    box.id = 'dns-check';
    box.appendChild(document.createTextNode(look[1] + 'DNS: ' + d.message));
    var detail = 'resolves to: ' + (d.addresses.length ? d.addresses.join(', ') : 'nothing') +
                 ' \u00b7 this host: ' + (d.host_addresses.join(', ') || 'unknown');
    box.appendChild(el('small', null, detail));
    return box;
  }

  function ecu(e) {
    var sec = el('section', 'ecu');
    var title = el('h2', null, 'ECU ' + e.id);
    add(title, el('span', 'muted', e.model),
        el('span', e.availability === 'online' ? 'badge ok' : 'badge bad', e.availability));
    sec.appendChild(title);
    var g = el('div', 'grid');
    fact(g, 'Power', fmt(e.power_w, 0, 'W'), true);
    fact(g, 'Today', fmt(e.today_energy_kwh, 2, 'kWh'), true);
    fact(g, 'Lifetime', fmt(e.lifetime_energy_kwh, 1, 'kWh'), true);
    fact(g, 'Last upload from', e.peer_address ? e.peer_address + ':' + e.peer_port + ' \u2192 port ' +
         e.local_port : 'none since the service started');
    fact(g, 'Received (host time)', e.last_upload_age_s === null ? 'never' :
         when(e.received) + ' (' + duration(e.last_upload_age_s) + ' ago)');
    fact(g, 'ECU timestamp', e.ecu_timestamp);
    fact(g, 'ECU clock offset', e.clock_offset_s === null ? 'unknown' : fmt(e.clock_offset_s, 0, 's'));
    fact(g, 'ECU day by', e.ecu_day_rule + (e.poll_state ? '; ' + e.poll_state : ''));
    fact(g, 'Reply sent', e.reply ? e.reply + ' (' + e.reply_rule + ')' : (e.reply_rule || 'none'));
    sec.appendChild(g);
    add(sec, el('h3', null, 'Power today'), curve(e.power_curve));
    sec.appendChild(el('h3', null, 'Inverters'));
    var table = el('table'), head = el('tr');
    ['Inverter', 'Model', 'Temperature', 'Frequency', 'Power', 'Channel', 'Voltage', 'Current',
     'Channel power'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    table.appendChild(head);
    e.inverters.forEach(function (i) {
      var channels = i.channels.length ? i.channels : [null];
      channels.forEach(function (c, n) {
        var row = el('tr', n === 0 ? 'inverter first' : 'channel');
        if (n === 0) {
          [i.uid, i.model, fmt(i.temperature_c, 0, '\u00b0C'), fmt(i.frequency_hz, 1, 'Hz'),
           fmt(i.power_w, 0, 'W')].forEach(function (v) {
            var cell = el('td', null, v);
            cell.rowSpan = channels.length;
            row.appendChild(cell);
          });
        }
        if (c)
          add(row, el('td', 'ch', c.channel), el('td', null, fmt(c.voltage_v, 1, 'V')),
              el('td', null, fmt(c.current_a, 2, 'A')), el('td', null, fmt(c.power_w, 0, 'W')));
        table.appendChild(row);
      });
    });
    sec.appendChild(add(el('div', 'scroll'), table));
    var unknown = [];
    function collect(prefix, fields) {
      Object.keys(fields || {}).forEach(function (k) { unknown.push(prefix + k + ' = ' + fields[k]); });
    }
    collect('', e.unknown);
    e.inverters.forEach(function (i) { collect(i.uid + ' ', i.unknown); });
    if (unknown.length) {
      var details = el('details');
      add(details, el('summary', 'muted', 'Fields not decoded yet (' + unknown.length + ')'),
          el('pre', 'log', unknown.join('\n')));
      sec.appendChild(details);
    }
    return sec;
  }

  function problems(list) {
    var sec = el('section');
    sec.appendChild(el('h2', null, 'Last warnings and errors'));
    if (!list.length) return add(sec, el('div', 'muted', 'None since the start.'));
    var ul = el('ul', 'log');
    list.slice().reverse().forEach(function (p) { ul.appendChild(el('li', p.level, p.line)); });
    return add(sec, ul);
  }

  function render(s) {
    document.getElementById('summary').textContent =
      'version ' + s.version + ' \u00b7 up ' + duration(s.uptime_s) + ' \u00b7 ' +
      s.ecus.length + (s.ecus.length === 1 ? ' ECU' : ' ECUs');
    var app = document.getElementById('app');
    var parts = [storeCheck(s.store), dns(s.dns), bridge(s)].filter(Boolean);
    if (!s.ecus.length)
      parts.push(add(el('section'), el('h2', null, 'No ECU yet'),
                     el('div', 'muted', 'No upload has arrived since the start. ECUs upload every ' +
                        'five minutes; check the DNS line above.')));
    s.ecus.forEach(function (e) { parts.push(ecu(e)); });
    parts.push(problems(s.recent_problems));
    app.replaceChildren.apply(app, parts);
    root.setAttribute('data-rendered', String(s.now));
  }

  var stale = document.getElementById('stale');
  function refresh() {
    fetch('api/status', {cache: 'no-store'})
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (s) { render(s); stale.className = 'badge bad'; })
      .catch(function () { stale.className = 'badge bad on'; });
  }
  render(JSON.parse(document.getElementById('initial-status').textContent));
  setInterval(refresh, 5000);
})();
</script>
</body>
</html>
)html";
    const auto replace = [&page](std::string_view marker, const std::string& with) {
        page.replace(page.find(marker), marker.size(), with);
    };
    replace("@BASE@", base_path.empty() ? std::string()
                                        : "<base href=\"" + html_escape(base_path) + "/\">\n");
    replace("@NONCE@", html_escape(nonce));
    replace("@DATA@", script_safe_json(status_json(status)));
    return page;
}

} // namespace ecu2mqtt
