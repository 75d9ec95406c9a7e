// A real Aedes broker (npm `aedes` 1.2, or 0.51 on Debian 12's Node.js 18; in-memory
// persistence) on a free loopback port: it hands the retained messages of a new subscription
// out asynchronously, after later publishes. Its npm package is installed by
// `scripts/install-deps.sh test`.
#pragma once

#include "child_process.hpp"
#include "net.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include <memory>

namespace test {

class AedesBroker {
  public:
    AedesBroker() : dir_(make_temp_dir("ecu2mqtt-aedes")), port_(free_port()) { start(); }
    ~AedesBroker() {
        kill();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    AedesBroker(const AedesBroker&) = delete;
    AedesBroker& operator=(const AedesBroker&) = delete;

    // Returns once it accepts connections; throws with its output when it does not within 10 s.
    void start() {
        const std::string modules = std::string(TEST_BROKERS_DIR) + "/node_modules";
        if (!std::filesystem::exists(modules + "/aedes"))
            throw std::runtime_error("aedes is not installed in " + modules +
                                     ": run scripts/install-deps.sh test");
        process_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{"node", AEDES_SCRIPT, modules, std::to_string(port_)},
            (dir_ / "aedes.log").string());
        if (!process_->wait_for_output("aedes listening", std::chrono::seconds(10)))
            throw std::runtime_error("aedes did not start: " + process_->output());
    }
    void stop() { end(SIGTERM); }
    void kill() { end(SIGKILL); }

    std::uint16_t port() const { return port_; }
    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return process_ ? process_->output() : std::string(); }

  private:
    void end(int sig) {
        if (process_) {
            process_->signal(sig);
            if (!process_->wait_for(std::chrono::seconds(5)))
                process_->signal(SIGKILL);
            process_->wait_for(std::chrono::seconds(5));
            process_.reset();
        }
    }

    std::filesystem::path dir_;
    std::uint16_t port_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace test
