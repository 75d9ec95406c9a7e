// A real Mosquitto whose ACL lets the service's user write its topics but not read them back,
// and lets a "reader" user read everything: either with Mosquitto's acl_file, which grants
// every subscription and silently delivers nothing the ACL denies, or with its dynamic security
// plugin, which refuses the subscription (SUBACK 0x80).
#pragma once

#include "child_process.hpp"
#include "mosquitto_broker.hpp"
#include "net.hpp"
#include "temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <pwd.h>

namespace test {

class RestrictedBroker {
  public:
    enum class Denial { Silent, Refused };
    static constexpr const char* kServiceUser = "ecu2mqtt";
    static constexpr const char* kReaderUser = "reader";
    static constexpr const char* kPassword = "secret";

    explicit RestrictedBroker(Denial denial)
        : dir_(make_temp_dir("ecu2mqtt-acl")), port_(free_port()) {
        std::ofstream conf(dir_ / "mosquitto.conf");
        const passwd* me = ::getpwuid(::geteuid());
        conf << "listener " << port_ << " 127.0.0.1\npersistence false\nmax_queued_messages 0\n"
             << "user " << (me ? me->pw_name : "mosquitto") << "\nallow_anonymous false\n";
        if (denial == Denial::Silent) {
            conf << "password_file " << (dir_ / "passwords").string() << "\nacl_file "
                 << (dir_ / "acl").string() << "\n";
            std::ofstream(dir_ / "passwords") << kServiceUser << ":" << kPassword << "\n"
                                              << kReaderUser << ":" << kPassword << "\n";
            run("mosquitto_passwd -U " + (dir_ / "passwords").string());
            std::ofstream(dir_ / "acl") << "user " << kServiceUser
                                        << "\ntopic write ecu2mqtt/#\ntopic write homeassistant/#\n"
                                           "topic read homeassistant/status\n"
                                        << "user " << kReaderUser << "\ntopic readwrite #\n";
        } else {
            conf << "plugin " << dynamic_security_plugin() << "\nplugin_opt_config_file "
                 << (dir_ / "dynsec.json").string() << "\n";
            write_dynamic_security();
        }
        conf.close();
        start();
    }
    ~RestrictedBroker() {
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

    std::string url() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }
    std::string log() const { return process_ ? process_->output() : std::string(); }

  private:
    static void run(const std::string& command) {
        if (std::system(command.c_str()) != 0)
            throw std::runtime_error("failed: " + command);
    }
    static std::string dynamic_security_plugin() {
        for (const char* candidate : {"/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                                      "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
                                      "/usr/lib/mosquitto_dynamic_security.so"})
            if (std::filesystem::exists(candidate))
                return candidate;
        throw std::runtime_error("Mosquitto's dynamic security plugin is not installed");
    }
    // mosquitto_ctrl hashes each user's password into a file of its own; the roles are ours.
    nlohmann::json hashed_client(const std::string& user) {
        const auto file = dir_ / (user + ".json");
        run("mosquitto_ctrl dynsec init " + file.string() + " " + user + " " + kPassword +
            " >/dev/null");
        std::ifstream in(file);
        return nlohmann::json::parse(in).at("clients").at(0);
    }
    void write_dynamic_security() {
        auto service = hashed_client(kServiceUser);
        service["roles"] = {{{"rolename", "writer"}}};
        auto reader = hashed_client(kReaderUser);
        reader["roles"] = {{{"rolename", "reader"}}};
        const auto acl = [](const char* type, const char* topic) {
            return nlohmann::json{{"acltype", type}, {"topic", topic}, {"allow", true}};
        };
        nlohmann::json config{
            {"clients", {service, reader}},
            {"roles",
             {{{"rolename", "writer"},
               {"acls",
                {acl("publishClientSend", "ecu2mqtt/#"),
                 acl("publishClientSend", "homeassistant/#"),
                 acl("subscribeLiteral", "homeassistant/status")}}},
              {{"rolename", "reader"},
               {"acls", {acl("publishClientSend", "#"), acl("subscribePattern", "#")}}}}},
            {"defaultACLAccess",
             {{"publishClientSend", false},
              {"publishClientReceive", true},
              {"subscribe", false},
              {"unsubscribe", true}}}};
        std::ofstream(dir_ / "dynsec.json") << config.dump(2);
    }

    std::filesystem::path dir_;
    std::uint16_t port_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace test
