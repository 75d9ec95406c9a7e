// The status page, the Prometheus metrics and the JSON status, each rendered from a snapshot.
#pragma once

#include "ecu2mqtt/core/telemetry.hpp"

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ecu2mqtt {

// `/api/status`: the snapshot as JSON (the README documents every key).
nlohmann::json status_json(const StatusSnapshot& status);

// `/metrics`: the Prometheus text exposition format, version 0.0.4.
std::string prometheus_metrics(const StatusSnapshot& status);

// `/`: one self-contained HTML document. `base_path` (from X-Ingress-Path, already checked) is
// where the page is served from, "" at the root; `nonce` allows the page's own script only.
std::string status_page(const StatusSnapshot& status, std::string_view base_path,
                        std::string_view nonce);

// Text made safe for HTML element content and quoted attribute values.
std::string html_escape(std::string_view text);

// JSON made safe to embed in an HTML <script> element: no '<', '>' or '&' left in it, and
// bytes that are not UTF-8 replaced.
std::string script_safe_json(const nlohmann::json& value);

} // namespace ecu2mqtt
