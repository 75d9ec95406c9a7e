// Raw bytes as text that is safe in logs, error messages and JSON (which needs valid UTF-8).
#pragma once

#include <string>
#include <string_view>

namespace ecu2mqtt {

// Bytes outside printable ASCII become \xNN; line breaks too unless `keep_line_breaks`. At most
// `max_shown` bytes are shown, then "...".
std::string printable_text(std::string_view raw, bool keep_line_breaks = true,
                           std::size_t max_shown = std::string_view::npos);

// The same, appended to `out`.
void append_printable_text(std::string& out, std::string_view raw, bool keep_line_breaks = true,
                           std::size_t max_shown = std::string_view::npos);

} // namespace ecu2mqtt
