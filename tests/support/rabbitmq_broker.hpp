// A real RabbitMQ with its MQTT plugin (Debian `rabbitmq-server`) as a private node on free
// loopback ports: its own node name, data and log folders, Erlang distribution and epmd ports,
// so it neither needs nor touches a system RabbitMQ. It never hands retained messages to a
// subscription with a wildcard, and keeps retained messages on disk across restarts.
#pragma once

#include "child_process.hpp"
#include "net.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <memory>

namespace test {

class RabbitMqBroker {
  public:
    RabbitMqBroker()
        : dir_(make_temp_dir("ecu2mqtt-rabbitmq")), port_(free_port()), dist_port_(free_port()),
          epmd_port_(free_port()) {
        std::ofstream(dir_ / "rabbitmq.conf")
            << "listeners.tcp = none\n" // no AMQP listener: only MQTT is tested
            << "mqtt.listeners.tcp.default = 127.0.0.1:" << port_ << "\n"
            << "mqtt.allow_anonymous = true\n"
            << "log.console = true\nlog.console.level = info\nlog.file = false\n";
        std::ofstream(dir_ / "enabled_plugins") << "[rabbitmq_mqtt].\n";
        epmd_ = std::make_unique<ChildProcess>(std::vector<std::string>{"epmd", "-port",
                                                                        std::to_string(epmd_port_),
                                                                        "-address", "127.0.0.1"},
                                               (dir_ / "epmd.log").string());
        start();
    }
    ~RabbitMqBroker() {
        kill();
        epmd_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    RabbitMqBroker(const RabbitMqBroker&) = delete;
    RabbitMqBroker& operator=(const RabbitMqBroker&) = delete;

    // Returns once the MQTT listener accepts connections; the Erlang VM takes many seconds.
    void start() {
        const auto node = "rabbit-" + std::to_string(port_) + "@localhost";
        process_ = std::make_unique<ChildProcess>(
            std::vector<std::string>{"/usr/lib/rabbitmq/bin/rabbitmq-server"},
            (dir_ / "rabbitmq.log").string(),
            std::vector<std::string>{
                "HOME=" + dir_.string(), // its Erlang cookie
                "RABBITMQ_NODENAME=" + node, "RABBITMQ_MNESIA_BASE=" + (dir_ / "mnesia").string(),
                "RABBITMQ_LOG_BASE=" + (dir_ / "log").string(),
                "RABBITMQ_CONFIG_FILE=" + (dir_ / "rabbitmq.conf").string(),
                "RABBITMQ_ENABLED_PLUGINS_FILE=" + (dir_ / "enabled_plugins").string(),
                "RABBITMQ_PID_FILE=" + (dir_ / "rabbitmq.pid").string(),
                "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
                "ERL_EPMD_PORT=" + std::to_string(epmd_port_),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface "
                "{127,0,0,1}"});
        const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
        while (std::chrono::steady_clock::now() < end && process_->running()) {
            if (process_->output().find("Server startup complete") != std::string::npos) {
                try {
                    TcpClient probe(port_);
                    return;
                } catch (const std::runtime_error&) {
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        throw std::runtime_error("rabbitmq did not start: " + process_->output());
    }
    void stop() { end(SIGTERM); }
    void kill() { end(SIGKILL); }
    // Its data (retained messages, sessions) gone, as on a broker without persistence.
    void forget_everything() {
        std::error_code ec;
        std::filesystem::remove_all(dir_ / "mnesia", ec);
    }

    std::uint16_t port() const { return port_; }
    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return process_ ? process_->output() : std::string(); }

  private:
    // The script waits for the Erlang VM, whose pid it wrote: the signal goes to the VM.
    void end(int sig) {
        if (!process_)
            return;
        pid_t vm = 0;
        std::ifstream(dir_ / "rabbitmq.pid") >> vm;
        if (vm > 0)
            ::kill(vm, sig);
        process_->signal(sig);
        if (!process_->wait_for(std::chrono::seconds(30))) {
            if (vm > 0)
                ::kill(vm, SIGKILL);
            process_->signal(SIGKILL);
            process_->wait_for(std::chrono::seconds(5));
        }
        if (vm > 0) // not our child: wait until it is gone, so the next start finds its ports free
            for (int i = 0; i < 500 && ::kill(vm, 0) == 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
        std::filesystem::remove(dir_ / "rabbitmq.pid");
        process_.reset();
    }

    std::filesystem::path dir_;
    std::uint16_t port_, dist_port_, epmd_port_;
    std::unique_ptr<ChildProcess> epmd_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace test
