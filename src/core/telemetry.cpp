#include "ecu2mqtt/core/telemetry.hpp"

#include <algorithm>

namespace ecu2mqtt {
namespace {

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// "192.168.1.20:41234" -> address and port; IPv6 peers come as "[::1]:41234".
std::pair<std::string, std::uint16_t> split_peer(const std::string& peer) {
    const auto colon = peer.rfind(':');
    if (colon == std::string::npos)
        return {peer, 0};
    std::string address = peer.substr(0, colon);
    if (address.size() >= 2 && address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
    unsigned port = 0;
    for (char c : peer.substr(colon + 1)) {
        if (c < '0' || c > '9' || port > 65535)
            return {peer, 0};
        port = port * 10 + static_cast<unsigned>(c - '0');
    }
    return {address, static_cast<std::uint16_t>(port > 65535 ? 0 : port)};
}

// Keeps the curve in time order; a point for a time already there replaces it.
void add_curve_point(std::vector<CurvePoint>& curve, CurvePoint point) {
    const auto at = std::lower_bound(
        curve.begin(), curve.end(), point,
        [](const CurvePoint& a, const CurvePoint& b) { return a.second_of_day < b.second_of_day; });
    if (at != curve.end() && at->second_of_day == point.second_of_day)
        *at = point;
    else if (curve.size() < Telemetry::kMaxCurvePoints)
        curve.insert(at, point);
}

} // namespace

EcuSnapshot* Telemetry::find_or_add(const std::string& ecu_id) {
    if (const auto it = ecus_.find(ecu_id); it != ecus_.end())
        return &it->second;
    if (ecus_.size() >= kMaxEcus)
        return nullptr; // bounded: a flood of made-up ids cannot grow the page without end
    auto& ecu = ecus_[ecu_id];
    ecu.id = ecu_id;
    return &ecu;
}

void Telemetry::on_upload(const RealtimeUpload& upload, const std::string& peer,
                          std::uint16_t local_port,
                          std::chrono::system_clock::time_point received) {
    EcuSnapshot* ecu = find_or_add(upload.ecu_id);
    ++counters_.uploads[{counted_id(upload.ecu_id), local_port, "live"}];
    if (!ecu)
        return;
    std::tie(ecu->peer_address, ecu->peer_port) = split_peer(peer);
    ecu->local_port = local_port;
    ecu->received_unix = unix_seconds(received);

    // ISO timestamps order as text. An upload sent again after a gap is older than what is
    // shown: it only adds its point to the curve of its day.
    const std::string timestamp = format_iso(upload.timestamp);
    const std::string day = timestamp.substr(0, 10);
    const std::string shown_day = ecu->ecu_timestamp.substr(0, 10);
    if (day > shown_day)
        ecu->power_curve.clear(); // a new day on the ECU's clock starts a new curve
    if (day >= shown_day)
        add_curve_point(
            ecu->power_curve,
            {upload.timestamp.hour * 3600 + upload.timestamp.minute * 60 + upload.timestamp.second,
             upload.power_w});
    if (timestamp < ecu->ecu_timestamp)
        return;
    ecu->model = upload.ecu_model;
    ecu->ecu_timestamp = timestamp;
    ecu->power_w = upload.power_w;
    ecu->lifetime_energy_kwh = upload.lifetime_energy_kwh;
    ecu->unknown = upload.unknown;
    ecu->inverters.clear();
    for (const auto& reading : upload.inverters) {
        if (ecu->inverters.size() >= kMaxInvertersShown)
            break;
        InverterSnapshot inverter{reading.uid,          reading.model,   reading.temperature_c,
                                  reading.frequency_hz, reading.power_w, {},
                                  reading.unknown};
        for (const auto& c : reading.channels)
            inverter.channels.push_back({c.channel, c.voltage_v, c.current_a, c.power_w});
        ecu->inverters.push_back(std::move(inverter));
    }
}

std::string Telemetry::counted_id(const std::string& ecu_id) {
    // Past kMaxEcus, made-up ids share one counter instead of growing the map.
    if (counted_ids_.contains(ecu_id))
        return ecu_id;
    if (counted_ids_.size() >= kMaxEcus)
        return std::string(kOtherEcus);
    counted_ids_.insert(ecu_id);
    return ecu_id;
}

void Telemetry::on_upload_set_aside(const std::string& ecu_id, std::uint16_t local_port,
                                    const std::string& verdict) {
    ++counters_.uploads[{counted_id(ecu_id), local_port, verdict}];
}

void Telemetry::on_reply(const std::string& ecu_id, const std::string& rule,
                         const std::string& bytes) {
    ++counters_.replies[rule];
    if (ecu_id.empty())
        return;
    if (const auto it = ecus_.find(ecu_id); it != ecus_.end()) {
        it->second.reply_rule = rule;
        it->second.reply = bytes;
    }
}

void Telemetry::set_connections(std::uint64_t opened, std::uint64_t refused,
                                std::uint64_t evicted) {
    counters_.connections_opened = opened;
    counters_.connections_refused = refused;
    counters_.connections_evicted = evicted;
}

void Telemetry::set_today_energy(const std::string& ecu_id, double kwh) {
    if (auto* ecu = find_or_add(ecu_id))
        ecu->today_energy_kwh = kwh;
}

void Telemetry::set_clock_offset(const std::string& ecu_id, double seconds) {
    if (auto* ecu = find_or_add(ecu_id))
        ecu->clock_offset_s = seconds;
}

void Telemetry::set_polling(const std::string& ecu_id, std::string ecu_day_rule,
                            std::string poll_state) {
    if (auto* ecu = find_or_add(ecu_id)) {
        ecu->ecu_day_rule = std::move(ecu_day_rule);
        ecu->poll_state = std::move(poll_state);
    }
}

void Telemetry::set_availability(const std::string& ecu_id, bool online) {
    if (auto* ecu = find_or_add(ecu_id))
        ecu->availability = online ? "online" : "offline";
}

void Telemetry::set_weak_channels(const std::string& ecu_id, std::vector<WeakChannel> weak) {
    if (auto* ecu = find_or_add(ecu_id))
        ecu->weak_channels = std::move(weak);
}

void Telemetry::set_tracked_inverters(const std::string& ecu_id,
                                      const std::vector<LedgerInverter>& tracked) {
    auto* ecu = find_or_add(ecu_id);
    if (!ecu)
        return;
    std::erase_if(ecu->inverters, [](const InverterSnapshot& i) { return !i.reporting; });
    std::set<std::string> listed;
    for (const auto& inverter : ecu->inverters)
        listed.insert(inverter.uid);
    for (const auto& inverter : tracked) {
        if (ecu->inverters.size() >= kMaxInvertersShown)
            break;
        if (listed.contains(inverter.uid))
            continue;
        InverterSnapshot absent{inverter.uid, inverter.model, 0, 0, 0, {}, {}, false};
        for (int channel = 1; channel <= inverter.channels; ++channel)
            absent.channels.push_back({channel, 0, 0, 0});
        ecu->inverters.push_back(std::move(absent));
    }
}

void Telemetry::set_live_reading(const std::string& ecu_id, const std::string& model,
                                 const std::string& ecu_timestamp, std::int64_t received_unix,
                                 double power_w, double lifetime_kwh) {
    auto* ecu = find_or_add(ecu_id);
    if (!ecu)
        return;
    ecu->lifetime_energy_kwh = lifetime_kwh;
    if (ecu->received_unix != 0)
        return; // an upload since the start shows itself
    ecu->model = model;
    ecu->ecu_timestamp = ecu_timestamp;
    ecu->received_unix = received_unix;
    ecu->power_w = power_w;
}

void Telemetry::on_log(LogLevel level, std::string_view line) {
    if (level < LogLevel::Warn)
        return;
    if (!line.empty() && line.back() == '\n')
        line.remove_suffix(1);
    std::lock_guard lock(problems_mutex_);
    if (problems_.size() >= kMaxProblems)
        problems_.pop_front();
    problems_.push_back({log_level_name(level), std::string(line.substr(0, 4096))});
}

StatusSnapshot Telemetry::snapshot(std::chrono::system_clock::time_point now) const {
    StatusSnapshot s;
    s.version = version_;
    s.now_unix = unix_seconds(now);
    s.started_unix = unix_seconds(started_);
    s.mqtt = mqtt_;
    s.store = store_;
    s.counters = counters_;
    s.dns = dns_;
    s.pvoutput = pvoutput_;
    for (const auto& [id, ecu] : ecus_)
        s.ecus.push_back(ecu);
    std::lock_guard lock(problems_mutex_);
    s.recent_problems.assign(problems_.begin(), problems_.end());
    return s;
}

} // namespace ecu2mqtt
