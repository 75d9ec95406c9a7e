#include "ecu2mqtt/http/pvoutput_status.hpp"

#include <string_view>

namespace ecu2mqtt {
namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            double value, std::string_view labels = {}) {
    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " +
           std::string(name) + " " + std::string(type) + "\n" + std::string(name);
    out += labels;
    const auto whole = static_cast<long long>(value);
    out += " " + std::to_string(whole) + "\n";
}

} // namespace

nlohmann::json pvoutput_status_json(const PvoutputSnapshot& p) {
    using nlohmann::json;
    json refused = json::array();
    for (const auto& [system, reason] : p.refused_systems)
        refused.push_back({{"system", system}, {"reason", reason}});
    json silent = json::array();
    for (const auto& ecu : p.silent_ecus)
        silent.push_back(
            {{"ecu", ecu.ecu_id},
             {"system", ecu.system_id},
             {"last_report", ecu.last_slot.empty() ? json(nullptr) : json(ecu.last_slot)},
             {"statuses_without", ecu.slots_without}});
    return {{"enabled", p.enabled},
            {"state", p.state},
            {"stopped", p.stopped},
            {"refused_systems", refused},
            {"silent_ecus", silent},
            {"backlog", p.backlog},
            {"sent", p.sent},
            {"rejected", p.rejected},
            {"expired", p.expired},
            {"last_upload", p.last_upload_unix ? json(p.last_upload_unix) : json(nullptr)},
            {"requests_left", p.requests_left ? json(*p.requests_left) : json(nullptr)},
            {"request_limit", p.request_limit ? json(*p.request_limit) : json(nullptr)},
            {"waiting_until", p.waiting_until_unix ? json(p.waiting_until_unix) : json(nullptr)},
            {"requests", p.requests},
            {"last_error", p.last_error}};
}

std::string pvoutput_metrics(const PvoutputSnapshot& p) {
    if (!p.enabled)
        return {};
    std::string out;
    family(out, "ecu2mqtt_pvoutput_stopped", "gauge",
           "1 once PVOutput refused the key or system (401/403) of every system: uploads stopped.",
           p.stopped ? 1 : 0);
    if (!p.refused_systems.empty()) {
        out += "# HELP ecu2mqtt_pvoutput_system_refused 1 for a system whose key and id PVOutput "
               "refused (401/403): its uploads stopped, the others go on.\n"
               "# TYPE ecu2mqtt_pvoutput_system_refused gauge\n";
        for (const auto& [system, reason] : p.refused_systems)
            out += "ecu2mqtt_pvoutput_system_refused{system=\"" + system + "\"} 1\n";
    }
    family(out, "ecu2mqtt_pvoutput_silent_ecus", "gauge",
           "ECUs named for a PVOutput system that stopped reporting: it sends without them.",
           static_cast<double>(p.silent_ecus.size()));
    family(out, "ecu2mqtt_pvoutput_backlog_statuses", "gauge",
           "Statuses queued for PVOutput and not sent yet.", static_cast<double>(p.backlog));
    out += "# HELP ecu2mqtt_pvoutput_statuses Statuses in the queue by how they ended.\n"
           "# TYPE ecu2mqtt_pvoutput_statuses gauge\n";
    out += "ecu2mqtt_pvoutput_statuses{state=\"sent\"} " + std::to_string(p.sent) + "\n";
    out += "ecu2mqtt_pvoutput_statuses{state=\"rejected\"} " + std::to_string(p.rejected) + "\n";
    out += "ecu2mqtt_pvoutput_statuses{state=\"expired\"} " + std::to_string(p.expired) + "\n";
    family(out, "ecu2mqtt_pvoutput_requests_total", "counter", "Requests sent to PVOutput.",
           static_cast<double>(p.requests));
    if (p.last_upload_unix)
        family(out, "ecu2mqtt_pvoutput_last_upload_time_seconds", "gauge",
               "When PVOutput last took an upload, Unix time.",
               static_cast<double>(p.last_upload_unix));
    if (p.requests_left)
        family(out, "ecu2mqtt_pvoutput_requests_remaining", "gauge",
               "Requests PVOutput allows for the rest of this hour (X-Rate-Limit-Remaining).",
               *p.requests_left);
    return out;
}

const char* pvoutput_page_script() {
    return R"js(
  function pvoutput(p) {
    if (!p || !p.enabled) return null;
    var look = p.stopped ? ['bad', '\u2718 '] : p.waiting_until ? ['warn', '\u2026 '] : ['ok', '\u2714 '];
    var box = el('div', 'check ' + look[0]);
    box.id = 'pvoutput-check';
    var text = p.stopped ? 'PVOutput refused the key or system: uploads stopped. Check the API ' +
        'key and system id, then restart. ' : 'PVOutput: ' + p.state + '. ';
    text += p.backlog + ' waiting \u00b7 last upload ' + (p.last_upload ? when(p.last_upload) : 'none');
    if (p.requests_left !== null) text += ' \u00b7 ' + p.requests_left + ' requests left this hour';
    if (p.rejected || p.expired) text += ' \u00b7 ' + p.rejected + ' rejected, ' + p.expired + ' expired';
    box.appendChild(document.createTextNode(look[1] + text));
    if (p.last_error) box.appendChild(el('small', null, 'last error: ' + p.last_error));
    if (p.stopped || (!p.refused_systems.length && !p.silent_ecus.length)) return box;
    var lines = el('div');
    lines.appendChild(box);
    p.silent_ecus.forEach(function (e) {
      lines.appendChild(el('div', 'check warn', '\u26a0 ECU ' + e.ecu + ' has not reported for PVOutput ' +
          'system ' + e.system + (e.last_report ? ' since ' + e.last_report : ' at all') + ': ' +
          e.statuses_without + ' status(es) sent with the other ECUs alone. Check the ECU or its id ' +
          'in --pvoutput-systems.'));
    });
    p.refused_systems.forEach(function (r) {
      lines.appendChild(el('div', 'check bad', '\u2718 PVOutput refused system ' + r.system +
          ' (' + r.reason + '): its uploads stopped, the other systems go on. Check its id and ' +
          'the API key, then restart.'));
    });
    return lines;
  }
)js";
}

} // namespace ecu2mqtt
