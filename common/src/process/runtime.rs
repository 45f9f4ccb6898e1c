//! A tokio runtime of one's own, for work that must not queue behind the
//! caller's tasks: the kernel gives its threads their share of the CPU
//! whatever the number of tasks elsewhere. Dropped, it shuts down without
//! blocking, so it may be dropped inside async code (an early return, a
//! cancelled future), where dropping a plain `Runtime` panics.

/// A multi-thread runtime, shut down in the background when dropped.
#[derive(Debug)]
pub struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl OwnRuntime {
    /// `threads` worker threads (at least one) named `name`.
    pub fn start(name: &str, threads: usize) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name(name)
            .enable_all()
            .build()?;
        Ok(Self(Some(runtime)))
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.0
            .as_ref()
            .expect("the runtime lives until dropped")
            .handle()
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_elsewhere_and_drops_inside_async_code() {
        let own = OwnRuntime::start("test-own", 1).unwrap();
        let name = own
            .handle()
            .spawn(async { std::thread::current().name().map(str::to_string) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("test-own"));
        drop(own); // a plain Runtime would panic here
    }
}
