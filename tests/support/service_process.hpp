// The real ecu2mqtt binary, started on free loopback ports against a given broker.
#pragma once

#include "child_process.hpp"
#include "mosquitto_broker.hpp"
#include "net.hpp"

#include <ctime>
#include <filesystem>

namespace test {

// Today's date in UTC as YYYYMMDD. Services under test run with TZ=UTC, so uploads dated today
// belong to the service's own day, and a restart does not start a new one.
inline std::string today_utc() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y%m%d", &tm);
    return buf;
}

// `seconds_ago` before now, rounded down to `grid_s` (a whole minute by default), as an ECU stamps
// its uploads (YYYYMMDDhhmmss). In UTC, which is the local time of services under test.
inline std::string utc_stamp(std::int64_t seconds_ago, std::int64_t grid_s = 60) {
    std::time_t t = std::time(nullptr) - seconds_ago;
    t -= t % grid_s;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char compact[16];
    std::strftime(compact, sizeof compact, "%Y%m%d%H%M%S", &tm);
    return compact;
}

class ServiceProcess {
  public:
    ServiceProcess(const std::string& broker_url, const std::filesystem::path& state_dir,
                   std::vector<std::string> extra_args = {}, bool wait_until_ready = true,
                   std::vector<std::string> extra_env = {}) {
        // A port found free can be taken by a test running beside this one before the service
        // binds it: then the service is started again on other ports.
        for (int attempt = 1;; ++attempt) {
            start(broker_url, state_dir, extra_args, extra_env);
            if (!wait_until_ready ||
                process_->wait_for_output("event=ready", std::chrono::seconds(10)))
                return;
            const auto output = process_->output();
            if (attempt == 3 || output.find("Address already in use") == std::string::npos)
                throw std::runtime_error("service did not start: " + output);
        }
    }

    std::uint16_t port() const { return ports_[0]; }
    ChildProcess& process() { return *process_; }
    pid_t process_id() const { return process_->pid(); }
    std::string log() const { return process_->output(); }

  private:
    void start(const std::string& broker_url, const std::filesystem::path& state_dir,
               const std::vector<std::string>& extra_args, std::vector<std::string> extra_env) {
        process_.reset();
        log_file_ = (state_dir.parent_path() / ("service-" + std::to_string(free_port()) + ".log"))
                        .string();
        ports_ = {free_port(), free_port()};
        while (ports_[1] == ports_[0]) // the kernel may hand out the same free port twice
            ports_[1] = free_port();
        std::vector<std::string> args{ECU2MQTT_BINARY,
                                      "--listen",
                                      "127.0.0.1",
                                      "--ports",
                                      std::to_string(ports_[0]) + "," + std::to_string(ports_[1]),
                                      "--mqtt-url",
                                      broker_url,
                                      "--state-dir",
                                      state_dir.string(),
                                      "--log-level",
                                      "debug"};
        // Tests run side by side: never the status page's fixed default port.
        args.insert(args.end(), {"--http-listen", "127.0.0.1:0"});
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        extra_env.push_back("TZ=UTC");
        process_ = std::make_unique<ChildProcess>(args, log_file_, extra_env);
    }

    std::string log_file_;
    std::vector<std::uint16_t> ports_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace test
