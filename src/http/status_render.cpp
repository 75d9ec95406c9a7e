#include "ecu2mqtt/http/status_render.hpp"

#include "ecu2mqtt/http/pvoutput_status.hpp"
#include "ecu2mqtt/status_page_asset.hpp" // generated from src/http/status_page.html

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
        counters["uploads"].push_back(
            {{"ecu", key.ecu}, {"port", key.port}, {"verdict", key.verdict}, {"count", count}});
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
                                 {"reporting", inverter.reporting},
                                 {"channels", channels},
                                 {"unknown", unknown_fields(inverter.unknown)}});
        }
        json weak = json::array();
        for (const auto& w : ecu.weak_channels)
            weak.push_back(
                {{"inverter", w.id.inverter},
                 {"channel", w.id.channel},
                 {"ratio", w.median_ratio},
                 {"sunny_moments", w.sunny_moments},
                 {"line", "inverter " + w.id.inverter + " channel " + std::to_string(w.id.channel) +
                              " gives " + std::to_string(std::lround(w.median_ratio * 100)) +
                              " % of the median channel over " + std::to_string(w.sunny_moments) +
                              " sunny uploads"}});
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
                        {"weak_panels", weak},
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
            {"pvoutput", pvoutput_status_json(s.pvoutput)},
            {"recent_problems", problems}};
}

std::string prometheus_metrics(const StatusSnapshot& s) {
    MetricsWriter m;
    m.family("ecu2mqtt_build_info", "gauge", "Always 1; the version in a label.");
    m.sample({{"version", s.version}}, 1);
    m.family("ecu2mqtt_start_time_seconds", "gauge", "When the service started, Unix time.");
    m.sample({}, static_cast<double>(s.started_unix));

    m.family("ecu2mqtt_uploads_total", "counter",
             "Real-time uploads received, by ECU, port and what became of them.");
    for (const auto& [key, count] : s.counters.uploads)
        m.sample({{"ecu", key.ecu}, {"port", std::to_string(key.port)}, {"verdict", key.verdict}},
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
                if (inverter.reporting) // an absent one's values are unknown, not 0
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
                    if (inverter.reporting)
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
    return m.take() + pvoutput_metrics(s.pvoutput);
}

std::string status_page(const StatusSnapshot& status, std::string_view base_path,
                        std::string_view nonce) {
    std::string page = kStatusPageHtml;
    const auto replace = [&page](std::string_view marker, const std::string& with) {
        page.replace(page.find(marker), marker.size(), with);
    };
    replace("@BASE@", base_path.empty() ? std::string()
                                        : "<base href=\"" + html_escape(base_path) + "/\">\n");
    replace("@NONCE@", html_escape(nonce));
    replace("@PVOUTPUT@", pvoutput_page_script());
    replace("@DATA@", script_safe_json(status_json(status)));
    return page;
}

} // namespace ecu2mqtt
