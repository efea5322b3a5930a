//! A real nginx on loopback accepting WebDAV PUT (`dav_methods PUT; create_full_put_path on`),
//! the way an origin or a CDN ingest point takes uploads. It can be stopped and started again
//! on the same port and root (origin outages). Shared by the tests and the publish bench.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    dir: PathBuf,
    /// What the origin holds (nginx's document root).
    pub root: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Nginx {
    /// Starts nginx with its config, temp files and document root (`www`) under `dir`.
    pub fn webdav(dir: &Path) -> Nginx {
        Nginx::webdav_with(dir, "")
    }

    /// [`Nginx::webdav`] with `extra` (more `location` blocks) in its server block.
    pub fn webdav_with(dir: &Path, extra: &str) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = dir.join("www");
        std::fs::create_dir_all(&root).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{}}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    client_max_body_size 0;\n    {extra}\n    \
             location / {{\n      dav_methods PUT DELETE MKCOL;\n      create_full_put_path on;\n      \
             dav_access user:rw group:r all:r;\n    }}\n  }}\n}}\n",
            root = root.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut nginx = Nginx {
            dir: dir.to_path_buf(),
            root,
            port,
            child: None,
        };
        nginx.start();
        nginx
    }

    /// The request lines of the access log so far (`GET /path HTTP/1.1`), one per request.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .collect()
    }

    /// The origin URL swarmpack publishes to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn start(&mut self) {
        assert!(self.child.is_none(), "nginx already running");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-p")
            .arg(&self.dir)
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/setup)");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not listen on {}; error.log:\n{}",
                self.port,
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops nginx at once (an origin outage: connections are refused).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
