// Every user-facing setting, read from defaults < JSON config file < environment < command line.
#pragma once

#include "ecu2mqtt/core/logger.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct Options {
    // Listener
    std::string listen_address = "0.0.0.0";
    std::vector<std::uint16_t> ports{8995, 8996, 8997};
    std::size_t max_message_bytes = 64 * 1024;
    std::chrono::seconds idle_timeout{30};
    std::size_t max_connections = 64;
    std::chrono::seconds max_connection_age{120};
    std::vector<std::string> allow_peers;
    std::vector<std::string> allow_ecus;
    LogLevel log_level = LogLevel::Info;
    std::string log_file;

    // MQTT
    std::string mqtt_url = "mqtt://localhost:1883";
    std::string mqtt_user;
    std::string mqtt_password;
    std::string mqtt_client_id = "ecu2mqtt";
    std::string mqtt_ca_file;
    std::string base_topic = "ecu2mqtt";
    std::string discovery_prefix = "homeassistant";
    bool discovery = true;
    bool publish_raw = false;
    std::chrono::seconds ecu_timeout{15 * 60};
    std::string state_dir;
    bool backfill = true;
    std::size_t spool_max_mb = 64;
    int history_days = 400;
    std::size_t max_ecus = 16;
    std::size_t max_inverters_per_ecu = 128;
    std::chrono::days forget_inverters_after{30};
    std::chrono::hours gap_expiry{48};

    // Full proxy and recording
    std::string forward_to_ema; // HOST[:PORT]; empty: fake EMA only
    std::string ema_resolver;   // IP[:PORT] of a DNS server for EMA's name
    std::chrono::milliseconds ema_timeout{5000};
    bool block_firmware = false;
    std::string record_dir;
    std::size_t record_max_mb = 512;

    // Local polling of the ECUs' port 8899 (see docs/polling.md)
    std::string poll_ecus; // "auto" or "ADDR[:PORT],…"; empty: off
    std::chrono::seconds poll_interval{300};
    std::chrono::seconds poll_timeout{10};

    // Status page, /metrics and /api/status
    bool http = true;
    std::string http_address = "127.0.0.1";
    std::uint16_t http_port = 8099;
    std::vector<std::string> http_allow_peers; // exact addresses; empty: any
    std::chrono::seconds http_timeout{10};
    std::string dns_check_name = "ecu.apsystemsema.com";
    std::vector<std::string>
        advertised_addresses; // empty: this host's own (or unknown in a container)

    // PVOutput uploads (off without a key; see docs/pvoutput.md).
    std::string pvoutput_api_key;                        // never logged, never shown
    std::string pvoutput_system_id;                      // every ECU not named below
    std::map<std::string, std::string> pvoutput_systems; // ECU id -> system id
    int pvoutput_interval = 5;
    std::string pvoutput_url = "https://pvoutput.org";
    bool pvoutput_donor = false;
};

struct ReplayOptions {
    std::string host = "127.0.0.1";
    std::optional<std::uint16_t> port; // nullopt: the recorded port
    double speed = 1.0;                // 0: as fast as possible
};

// What `ecu2mqtt history` exports. Empty fields select everything; dates are YYYY-MM-DD on the
// ECU's own calendar, both inclusive.
struct HistorySelection {
    std::string ecu_id;
    std::string from;
    std::string to;
};

struct HistoryOptions {
    HistorySelection selection;
    bool curve = false;    // the power curve instead of energy per day
    bool pvoutput = false; // the PVOutput queue and what was sent instead
};

enum class Command { Run, Decode, Replay, History, Help, Version, Healthcheck, Addon };

struct CommandLine {
    Command command = Command::Run;
    Options options;                // `history` uses only the state directory
    std::vector<std::string> files; // for `decode` and `replay`
    ReplayOptions replay;
    HistoryOptions history;
};

// Thrown for anything the user has to fix before the service can start.
class OptionError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

// `environment` maps variable names to values (the caller passes the real environment), so that
// parsing stays testable. Throws OptionError with a message naming the offending option.
CommandLine parse_command_line(const std::vector<std::string>& args,
                               const std::map<std::string, std::string>& environment);

std::string help_text();

// The state directory when none is configured: $STATE_DIRECTORY (systemd), else
// $HOME/.local/state/ecu2mqtt, else ./ecu2mqtt-state.
std::string default_state_dir(const std::map<std::string, std::string>& environment);

} // namespace ecu2mqtt
