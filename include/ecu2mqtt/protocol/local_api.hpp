// The ECU's local port 8899: the three read-only requests ecu2mqtt sends and their replies. Pure.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ecu2mqtt {

// The only commands ever sent: others set the time, the network or the inverter ids.
enum class LocalCommand { EcuInfo, Realtime, SignalLevels };

std::string_view local_command_code(LocalCommand command); // "0001", "0002", "0030"

// `APS1100160001END\n`, `APS110028` + `0002`/`0030` + id + `END\n`. Nullopt when a request that
// names the ECU gets an id that is not 12 digits.
std::optional<std::string> encode_local_request(LocalCommand command, std::string_view ecu_id);

// The size the reply announces (bytes 5–8 + 1), once those bytes are there and are digits.
std::optional<std::size_t> local_reply_size(std::string_view received);
// True when the reply is whole: its length is satisfied, or it ends in `END\n` (some firmware
// counts the ending but does not send it: the reader then also stops at the peer's close).
bool local_reply_complete(std::string_view received);

struct LocalApiError {
    std::size_t offset = 0;
    std::string reason;

    std::string describe() const { return "offset " + std::to_string(offset) + ": " + reason; }
};

// 0001.
struct LocalEcuInfo {
    std::string group; // "11", or "12" from the ECU-R Pro and the ECU-C
    std::string ecu_id;
    double lifetime_energy_kwh = 0;
    double last_power_w = 0;
    double today_energy_kwh = 0;
    std::optional<LocalDateTime> last_ema_contact; // unset when not a date (`d0d0…`)
    int inverters_registered = 0;
    int inverters_online = 0;
    std::string firmware;  // `ECU_R_1.3.6C`
    std::string time_zone; // `Etc/GMT-8`, `Europe/Amsterdam`
    // A firmware or zone text with bytes that are no printable text is left empty, and why here.
    std::vector<LocalApiError> dropped;
};

// One record of 0002. Zeroed fields of an offline inverter are unset, never 0 Hz or −100 °C.
struct LocalInverter {
    std::string uid;
    std::string type_code; // `01` … `05`, or `00` (registered, never heard)
    bool online = false;
    std::optional<double> frequency_hz;
    std::optional<double> temperature_c;
    std::vector<std::optional<double>> channel_power_w;
    // AC grid voltage per phase: one for single-phase types, three (line-to-line on some plants,
    // line-to-neutral on others) for the 3-phase types. Not the DC voltages of the upload.
    std::vector<std::optional<double>> ac_voltage_v;
};

// What a grid, an inverter or a count of inverters can be: a value outside is a garbled or odd
// reply, left unset instead of published (65535 V, 6553.5 Hz). Documented in docs/polling.md.
inline constexpr double kMinGridVoltage = 80, kMaxGridVoltage = 500; // 3-phase line-to-line too
inline constexpr double kMinGridFrequency = 40, kMaxGridFrequency = 70;
inline constexpr double kMinInverterTemperature = -40, kMaxInverterTemperature = 125;

// 0002.
struct LocalRealtime {
    std::string group;
    std::optional<LocalDateTime> ecu_time;
    std::vector<LocalInverter> inverters;
    // Values out of range, left unset, and why (the record's offset and the value).
    std::vector<LocalApiError> dropped;
};

struct LocalSignalLevel {
    std::string uid;
    int level = 0; // the raw byte, 0–255: the peers convert it three different ways
};

// 0030.
struct LocalSignalLevels {
    std::string group;
    std::vector<LocalSignalLevel> levels;
};

template <class Reply> using LocalResult = std::variant<Reply, LocalApiError>;

template <class Reply> const LocalApiError* local_error(const LocalResult<Reply>& result) {
    return std::get_if<LocalApiError>(&result);
}
template <class Reply> const Reply* local_reply(const LocalResult<Reply>& result) {
    return std::get_if<Reply>(&result);
}

// Each decodes one whole reply. A short error reply (status other than `00`), a wrong command,
// a frame too short for what it announces, or an inverter record type not in the table gives an
// error with the offset and the reason: the whole frame is then dropped, never half read.
LocalResult<LocalEcuInfo> decode_local_ecu_info(std::string_view reply);
LocalResult<LocalRealtime> decode_local_realtime(std::string_view reply);
LocalResult<LocalSignalLevels> decode_local_signal_levels(std::string_view reply);

} // namespace ecu2mqtt
