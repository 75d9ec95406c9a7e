// `ecu2mqtt history --pvoutput`: the PVOutput queue (each status and how far it got) and the days
// sent with addoutput, as CSV.
#pragma once

#include <filesystem>
#include <ostream>

namespace ecu2mqtt {

// Columns: kind (status or output), system_id, date, time (an output's: its peak time),
// power_w (an output's: its peak), energy_wh (a status's lifetime counter, an output's day),
// state (pending, sent, rejected, expired), sent_at (UTC), reason. Oldest first.
void write_pvoutput_csv(std::ostream& out, const std::filesystem::path& database_file);

} // namespace ecu2mqtt
