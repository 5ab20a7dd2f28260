// Inactivity at the cabinet. The cabinet itself decides (its session warns at 50 s and logs off at 60 s by
// default, on its own clock); this watches what it decided and keeps it in step with the person at the screen.
//   - every 2 s it reads the session (a read that does not count as activity): "warned" shows the warning;
//   - a touch or key press while the last call that counted as activity is more than 5 s old sends one, so the
//     cabinet sees a person typing a count as active even before they press Enter.
const POLL_MS = 2000;
const KEEPALIVE_AFTER_MS = 5000;

export class SessionWatch {
  /**
   * @param {import("./api.js").Api} api
   * @param {{keepalivePath: () => string, onWarn: (secondsLeft: number) => void, onClear: () => void}} hooks
   */
  constructor(api, hooks) {
    this.api = api;
    this.hooks = hooks;
    this.timer = null;
    this.lastActivity = 0;
    this.warned = false;
    this.session = null;
    this.countdown = null;
    api.onActivity = () => {
      this.lastActivity = Date.now();
    };
    this.touched = () => {
      if (!this.session) return;
      if (this.warned || Date.now() - this.lastActivity > KEEPALIVE_AFTER_MS) this.keepalive();
    };
  }

  start(session) {
    this.stop();
    this.session = session;
    this.lastActivity = Date.now();
    document.addEventListener("pointerdown", this.touched, true);
    document.addEventListener("keydown", this.touched, true);
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    this.session = null;
    this.clearWarning();
    document.removeEventListener("pointerdown", this.touched, true);
    document.removeEventListener("keydown", this.touched, true);
  }

  async keepalive() {
    this.lastActivity = Date.now();
    try {
      await this.api.get(this.hooks.keepalivePath());
      await this.poll();
    } catch {
      // a refusal here (session over) reaches the page through api.onSessionEnded
    }
  }

  async poll() {
    if (!this.session) return;
    try {
      const now = await this.api.request("GET", "/api/v1/cabinet/session", undefined, { activity: false });
      if (now.state === "warned") this.warn(now);
      else this.clearWarning();
    } catch {
      // ended sessions are reported by api.onSessionEnded; a network blip is retried on the next poll
    }
  }

  warn(now) {
    if (this.warned) return;
    this.warned = true;
    let left = Math.max(1, Math.round(now.inactivity_logout_s - now.inactivity_warning_s));
    this.hooks.onWarn(left);
    this.countdown = setInterval(() => {
      left = Math.max(0, left - 1);
      this.hooks.onWarn(left);
    }, 1000);
  }

  clearWarning() {
    clearInterval(this.countdown);
    this.countdown = null;
    if (this.warned) {
      this.warned = false;
      this.hooks.onClear();
    }
  }
}
