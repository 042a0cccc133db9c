// Serving certificate that follows its files: cert-manager rotates the Secret, the kubelet swaps the
// mounted files (..data symlink), and new TLS handshakes get the new certificate while connections
// already open keep theirs. No request is dropped and the listening socket stays open.
//
// How: install() puts an OpenSSL certificate callback (SSL_CTX_set_cert_cb) on the server's SSL_CTX.
// It runs in every handshake and sets the current certificate, chain and key on that connection's
// SSL object (SSL_use_certificate etc. take their own references). A watcher thread stats both files
// every interval (device, inode, size, mtime, ctime, following symlinks) and, when they changed,
// loads them and swaps the current pair under a mutex, only if the key matches the certificate
// (a half-rotated pair, e.g. the certificate written before the key, is retried at the next check).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace gemwh {

class CertReloader {
 public:
  /// Paths to PEM files: the certificate (leaf first, then any chain) and its private key.
  CertReloader(std::string cert_path, std::string key_path);
  ~CertReloader();  // stops the watcher
  CertReloader(const CertReloader&) = delete;
  CertReloader& operator=(const CertReloader&) = delete;

  /// Loads the files now if they changed since the last successful load (the first call always
  /// loads). Returns true when the serving pair is valid afterwards (old or new); *err says why a
  /// load failed. Thread-safe.
  bool reload(std::string* err);

  /// Sets the current pair on `ctx` and installs the per-handshake callback, which refers to this
  /// object: no handshake on `ctx` may start after it is destroyed. Call once, after a successful
  /// reload(). Returns false when OpenSSL refuses the pair.
  bool install(SSL_CTX* ctx);

  /// Starts the watcher thread: reload() every `interval`, logging outcomes through `log`
  /// (called from the watcher thread; may be empty).
  void start(std::chrono::milliseconds interval, std::function<void(const std::string&)> log);
  void stop();

  /// Number of successful loads so far (1 after the first). Thread-safe.
  uint64_t generation() const { return generation_.load(); }

 private:
  struct Pair;
  struct FileSig {
    uint64_t dev = 0, ino = 0, size = 0;
    int64_t mtime_ns = 0, ctime_ns = 0;
    bool operator==(const FileSig& o) const {
      return dev == o.dev && ino == o.ino && size == o.size && mtime_ns == o.mtime_ns &&
             ctime_ns == o.ctime_ns;
    }
  };
  static int cert_cb(SSL* ssl, void* arg);
  static bool stat_file(const std::string& path, FileSig* sig);
  std::shared_ptr<const Pair> current() const;

  const std::string cert_path_, key_path_;
  mutable std::mutex mu_;             // guards current_, loaded_sig_
  std::shared_ptr<const Pair> current_;
  FileSig loaded_cert_sig_, loaded_key_sig_;
  std::mutex reload_mu_;              // one reload at a time
  std::atomic<uint64_t> generation_{0};

  std::thread watcher_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
};

}  // namespace gemwh
