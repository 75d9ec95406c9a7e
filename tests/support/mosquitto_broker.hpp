// A real Mosquitto broker on a free loopback port, started and stopped by the test.
#pragma once

#include "child_process.hpp"
#include "net.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include <memory>
#include <pwd.h>

namespace test {

inline std::string mosquitto_binary() {
    for (const char* candidate :
         {"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/bin/mosquitto"})
        if (std::filesystem::exists(candidate))
            return candidate;
    return "mosquitto";
}

// Starts Mosquitto with `dir`/mosquitto.conf, its log in `dir`/mosquitto.log, and returns once
// it accepts connections on `port`; throws with its output when it does not within 5 s.
inline std::unique_ptr<ChildProcess> start_mosquitto(const std::filesystem::path& dir,
                                                     std::uint16_t port) {
    auto process = std::make_unique<ChildProcess>(
        std::vector<std::string>{mosquitto_binary(), "-c", (dir / "mosquitto.conf").string()},
        (dir / "mosquitto.log").string());
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < end) {
        try {
            TcpClient probe(port);
            return process;
        } catch (const std::runtime_error&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    throw std::runtime_error("mosquitto did not start: " + process->output());
}

class MosquittoBroker {
  public:
    // With `user`, anonymous clients are refused and only user/password may connect. With
    // `persistent`, sessions and queued messages survive a stop and start.
    explicit MosquittoBroker(std::string user = {}, std::string password = {},
                             bool persistent = false)
        : dir_(make_temp_dir("ecu2mqtt-broker")), port_(free_port()), user_(std::move(user)),
          password_(std::move(password)) {
        std::ofstream conf(dir_ / "mosquitto.conf");
        // Started as root, Mosquitto switches to this user; keep it the one owning the files.
        const passwd* me = ::getpwuid(::geteuid());
        conf << "listener " << port_ << " 127.0.0.1\n"
             << (persistent ? "persistence true\npersistence_location " + dir_.string() + "/\n"
                            : std::string("persistence false\n"))
             << "user " << (me ? me->pw_name : "mosquitto")
             << "\n"
             // A subscriber that falls behind a burst would otherwise lose what passes 1000
             // queued messages, and a test would blame the service.
             << "max_queued_messages 0\n";
        if (user_.empty()) {
            conf << "allow_anonymous true\n";
        } else {
            conf << "allow_anonymous false\npassword_file " << (dir_ / "passwords").string()
                 << "\n";
            std::ofstream(dir_ / "passwords") << user_ << ":" << password_ << "\n";
            const std::string cmd = "mosquitto_passwd -U " + (dir_ / "passwords").string();
            if (std::system(cmd.c_str()) != 0)
                throw std::runtime_error("mosquitto_passwd failed");
        }
        conf.close();
        start();
    }
    ~MosquittoBroker() {
        stop();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    void start() { process_ = start_mosquitto(dir_, port_); }
    void stop() {
        if (process_) {
            process_->signal(SIGTERM);
            process_->wait_for(std::chrono::seconds(5));
            process_.reset();
        }
    }

    // A crash: no chance to write the persistence file.
    void kill() {
        if (process_) {
            process_->signal(SIGKILL);
            process_->wait_for(std::chrono::seconds(5));
            process_.reset();
        }
    }

    std::uint16_t port() const { return port_; }
    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
    const std::string& user() const { return user_; }
    const std::string& password() const { return password_; }
    std::string log() const { return process_ ? process_->output() : std::string(); }

  private:
    std::filesystem::path dir_;
    std::uint16_t port_;
    std::string user_, password_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace test
