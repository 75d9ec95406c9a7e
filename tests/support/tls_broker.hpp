// A real Mosquitto with a TLS listener on a free loopback port, its certificate issued by a test
// CA made with the openssl command for each test: valid, for another host name, or expired.
#pragma once

#include "child_process.hpp"
#include "mosquitto_broker.hpp"
#include "net.hpp"
#include "temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <pwd.h>
#include <stdexcept>
#include <string>

namespace test {

class TlsBroker {
  public:
    enum class Certificate { Valid, OtherHost, Expired };

    explicit TlsBroker(Certificate certificate)
        : dir_(make_temp_dir("ecu2mqtt-tls")), port_(free_port()) {
        make_certificates(certificate);
        std::ofstream conf(dir_ / "mosquitto.conf");
        const passwd* me = ::getpwuid(::geteuid());
        conf << "listener " << port_ << " 127.0.0.1\n"
             << "cafile " << ca_file() << "\ncertfile " << (dir_ / "server.pem").string()
             << "\nkeyfile " << (dir_ / "server.key").string() << "\n"
             << "allow_anonymous true\npersistence false\n"
             << "user " << (me ? me->pw_name : "mosquitto") << "\n";
        conf.close();
        process_ = start_mosquitto(dir_, port_);
    }
    ~TlsBroker() {
        process_->signal(SIGTERM);
        process_->wait_for(std::chrono::seconds(5));
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    TlsBroker(const TlsBroker&) = delete;
    TlsBroker& operator=(const TlsBroker&) = delete;

    std::uint16_t port() const { return port_; }
    std::string url(const std::string& host = "127.0.0.1") const {
        return "mqtts://" + host + ":" + std::to_string(port_);
    }
    std::string ca_file() const { return (dir_ / "ca.pem").string(); }
    std::string log() const { return process_->output(); }

  private:
    void openssl(const std::string& arguments) const {
        const std::string command =
            "cd '" + dir_.string() + "' && openssl " + arguments + " >>openssl.log 2>&1";
        if (std::system(command.c_str()) != 0)
            throw std::runtime_error("openssl " + arguments + " failed, see " +
                                     (dir_ / "openssl.log").string());
    }

    void make_certificates(Certificate certificate) const {
        const std::string ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        openssl("req -x509 " + ec_key +
                " -keyout ca.key -out ca.pem -days 30 -subj '/CN=ecu2mqtt test CA'");
        openssl("req " + ec_key + " -keyout server.key -out server.csr -subj '/CN=test broker'");
        std::ofstream(dir_ / "ext.cnf")
            << "subjectAltName="
            << (certificate == Certificate::OtherHost ? "DNS:broker.invalid"
                                                      : "DNS:localhost,IP:127.0.0.1")
            << "\n";
        if (certificate != Certificate::Expired) {
            openssl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                    "-out server.pem -days 30 -extfile ext.cnf");
            return;
        }
        // `openssl ca` is the one that can date a certificate in the past.
        std::ofstream(dir_ / "index.txt").close();
        std::ofstream(dir_ / "serial") << "01\n";
        std::ofstream(dir_ / "ca.cnf") << "[ca]\ndefault_ca=test\n[test]\ndatabase=index.txt\n"
                                          "new_certs_dir=.\nserial=serial\ndefault_md=sha256\n"
                                          "policy=any\n[any]\ncommonName=supplied\n";
        openssl("ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in server.csr "
                "-out server.pem -startdate 20200101000000Z -enddate 20200201000000Z "
                "-extfile ext.cnf");
    }

    std::filesystem::path dir_;
    std::uint16_t port_;
    std::unique_ptr<ChildProcess> process_;
};

} // namespace test
