// What the decoder makes of one ECU message: plain data, no behaviour.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace ecu2mqtt {

// A field whose meaning is not known yet, kept verbatim under a stable key such as "bytes_10_15"
// (its offsets inside the header, block or channel record) so nothing is thrown away.
using UnknownFields = std::vector<std::pair<std::string, std::string>>;

struct ChannelReading {
    int channel = 0; // 1-based, as the record itself numbers it
    double voltage_v = 0;
    double current_a = 0;
    double power_w = 0;
    UnknownFields unknown;
};

struct InverterReading {
    std::string uid;
    std::string model_code;
    std::string model;
    double frequency_hz = 0;
    double temperature_c = 0;
    double power_w = 0; // sum of the channels
    std::vector<ChannelReading> channels;
    UnknownFields unknown;
};

// An inverter block the decoder could not read: left out of the upload, kept verbatim.
struct SkippedBlock {
    std::size_t offset = 0;       // of the block in the message
    std::size_t error_offset = 0; // of what did not fit, in the message
    std::string reason;           // what did not fit
    std::string raw;              // the block's bytes
};

// An `APS18` real-time upload: what the ECU sends every five minutes.
struct RealtimeUpload {
    std::string signature; // "APS18"
    std::string ecu_id;
    std::string ecu_model;
    double power_w = 0;
    double lifetime_energy_kwh = 0;
    LocalDateTime timestamp;
    int inverters_online = 0;
    std::vector<InverterReading> inverters;
    UnknownFields unknown;
    std::vector<std::string> notes; // things that decoded but do not add up
    // Blocks that did not decode: one odd block loses that inverter only, not the upload.
    std::vector<SkippedBlock> skipped_blocks;
};

// An `ECU11` message, seen on the control port 9220. Layout from the peers, not byte-verified.
struct ControlMessage {
    int length = 0;
    std::string command;
    std::optional<std::string> ecu_id;
    std::string payload;
};

// Anything else that starts like an ECU message (`APS` + version) but is not a real-time upload:
// history, pulls, firmware checks. Only what can be inferred is filled in.
struct OtherApsMessage {
    std::string signature;
    std::optional<std::string> ecu_id;
    std::optional<LocalDateTime> timestamp;
};

using EcuMessage = std::variant<RealtimeUpload, ControlMessage, OtherApsMessage>;

struct DecodeError {
    std::size_t offset = 0;
    std::string reason;

    std::string describe() const { return "offset " + std::to_string(offset) + ": " + reason; }
};

using DecodeResult = std::variant<EcuMessage, DecodeError>;

inline const DecodeError* decode_error(const DecodeResult& r) {
    return std::get_if<DecodeError>(&r);
}
inline const EcuMessage* decoded_message(const DecodeResult& r) {
    return std::get_if<EcuMessage>(&r);
}

// The ECU id a message names, when it names one.
std::optional<std::string> ecu_id_of(const EcuMessage& message);
// The data timestamp a message carries, when it carries one.
std::optional<LocalDateTime> timestamp_of(const EcuMessage& message);
// "realtime", "control" or "other".
const char* message_type_name(const EcuMessage& message);

} // namespace ecu2mqtt
