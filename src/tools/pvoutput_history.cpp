#include "ecu2mqtt/tools/pvoutput_history.hpp"

#include "ecu2mqtt/protocol/local_time.hpp"
#include "ecu2mqtt/store/pvoutput_queue.hpp"
#include "ecu2mqtt/tools/history_command.hpp"

#include <algorithm>
#include <cmath>

namespace ecu2mqtt {
namespace {

constexpr std::size_t kAllRows = 100'000'000;

std::string utc(std::int64_t unix_s) {
    return unix_s ? format_iso(from_epoch_seconds(unix_s)) + "Z" : std::string();
}

} // namespace

void write_pvoutput_csv(std::ostream& out, const std::filesystem::path& database_file) {
    PvoutputQueue queue(database_file);
    auto rows = queue.rows(kAllRows);
    std::reverse(rows.begin(), rows.end());
    auto outputs = queue.outputs_sent(kAllRows);
    std::reverse(outputs.begin(), outputs.end());
    out << "kind,system_id,date,time,power_w,energy_wh,state,sent_at,reason\r\n";
    for (const auto& row : rows)
        out << "status," << csv_field(row.system_id) << ',' << row.slot.substr(0, 10) << ','
            << row.slot.substr(11, 5) << ',' << std::llround(row.power_w) << ','
            << std::llround(row.lifetime_wh) << ',' << row_state_name(row.state) << ','
            << utc(row.sent_at_s) << ',' << csv_field(row.reason) << "\r\n";
    for (const auto& day : outputs)
        out << "output," << csv_field(day.system_id) << ',' << day.day << ',' << day.peak_time
            << ',' << std::llround(day.peak_power_w) << ',' << std::llround(day.generated_wh)
            << ",sent," << utc(day.sent_at_s) << ",\r\n";
}

} // namespace ecu2mqtt
