// The PVOutput uploader on the status page, in /api/status and in /metrics (never its key).
#pragma once

#include "ecu2mqtt/core/telemetry.hpp"

#include <nlohmann/json.hpp>
#include <string>

namespace ecu2mqtt {

nlohmann::json pvoutput_status_json(const PvoutputSnapshot& pvoutput);
// Metric families in the Prometheus text format; none while the uploader is off.
std::string pvoutput_metrics(const PvoutputSnapshot& pvoutput);
// The page script's `pvoutput(p)`: a status line, red when PVOutput refused the key.
const char* pvoutput_page_script();

} // namespace ecu2mqtt
