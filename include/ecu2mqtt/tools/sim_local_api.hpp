// The simulator's port 8899: answers the three read-only requests from its simulated plant, and
// misbehaves on request as ECUs in the field do (refuse, silent, no END, truncate, wedge).
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

struct SimPlantInverter {
    std::string uid; // 12 digits
    int channels = 2;
};

// What the replies say about one simulated ECU.
struct SimPlantEcu {
    std::string id; // 12 digits
    std::vector<SimPlantInverter> inverters;
    std::string firmware = "ECU_R_1.3.6C";
    std::string time_zone = "Europe/Amsterdam";
    int peak_watts = 300;
};

// The real-time record type of an inverter: `01` YC600, `02` YC1000, `03` QS1, `04` DS3.
std::string_view sim_record_type(std::string_view uid, int channels);

// Replies in the layout of the users' posted ones (group 11, ECU info layout 01). Pure.
std::string sim_ecu_info_reply(const SimPlantEcu& ecu, double lifetime_kwh, double power_w);
std::string sim_realtime_reply(const SimPlantEcu& ecu, const LocalDateTime& now);
std::string sim_signal_reply(const SimPlantEcu& ecu);

enum class SimLocalFault {
    None,     // answer, then close
    Refuse,   // do not listen: connections are refused
    Silent,   // accept, read the request, send nothing
    NoEnd,    // the reply without its trailing END\n (a 2025 ECU-R firmware)
    Truncate, // the first half of the reply, then close
};

// "none", "refuse", "silent", "no-end", "truncate"; throws std::invalid_argument.
SimLocalFault parse_sim_local_fault(const std::string& text);

struct SimLocalApiConfig {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8899;
    SimLocalFault fault = SimLocalFault::None;
    std::optional<int> wedge_after_polls; // silent for good after this many ECU info replies
};

// Serves on a thread of its own from construction until destruction.
class SimLocalApiServer {
  public:
    SimLocalApiServer(SimLocalApiConfig config, std::vector<SimPlantEcu> plant,
                      LocalDateTime start);
    ~SimLocalApiServer();
    SimLocalApiServer(const SimLocalApiServer&) = delete;
    SimLocalApiServer& operator=(const SimLocalApiServer&) = delete;

    // The plant's clock and counters as the uploads advance them.
    void set_clock(const LocalDateTime& now, const std::vector<double>& lifetime_kwh);
    std::uint64_t requests() const;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

} // namespace ecu2mqtt
