// A poller on its own loop against a simulated ECU port 8899, recording what it hands on.
#pragma once

#include "ecu2mqtt/net/ecu_poller.hpp"
#include "support/local_api_server.hpp"
#include "support/test_paths.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace test {

// Runs the loop until `condition` holds, at most `limit`; whether it holds.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& condition,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition() && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(std::chrono::milliseconds(20));
    }
    return condition();
}

struct PollerRig {
    boost::asio::io_context io;
    LocalApiServer ecu{io};
    std::ostringstream log_text;
    ecu2mqtt::Logger log{log_text, ecu2mqtt::LogLevel::Debug};
    std::vector<ecu2mqtt::PolledEcuFacts> polled;
    std::vector<std::string> polled_ids;
    std::vector<std::string> zones;
    bool uploading = false;
    std::unique_ptr<ecu2mqtt::EcuPoller> poller;

    explicit PollerRig(bool from_uploads = false) {
        ecu2mqtt::PollerConfig config;
        if (from_uploads)
            config.from_uploads = true;
        else
            config.targets = {{"127.0.0.1", ecu.port()}};
        config.interval = std::chrono::milliseconds(150);
        config.timeout = std::chrono::milliseconds(300);
        config.first_poll = std::chrono::milliseconds(0);
        config.max_backoff = std::chrono::milliseconds(600);
        config.zoneinfo_dir = data_path("zoneinfo");
        poller = std::make_unique<ecu2mqtt::EcuPoller>(
            io, config, log,
            [this](const std::string& id, const ecu2mqtt::PolledEcuFacts& facts,
                   std::shared_ptr<const ecu2mqtt::TimeZone> zone) {
                polled_ids.push_back(id);
                polled.push_back(facts);
                zones.push_back(zone ? zone->name() : "");
            },
            [this](const std::string&) { return uploading; });
    }

    std::size_t count(const std::string& text) const {
        const auto all = log_text.str();
        std::size_t n = 0;
        for (auto at = all.find(text); at != std::string::npos; at = all.find(text, at + 1))
            ++n;
        return n;
    }
    int failures() const {
        const auto s = poller->status();
        return s.empty() ? 0 : s.front().consecutive_failures;
    }
};

} // namespace test
