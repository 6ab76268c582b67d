// The simulated YouTrack web UI. Opened with ?user=U&password=P it logs in through Hub's
// implicit flow (the login page reads sessionStorage['sim-login']); back with a token in the
// fragment it does what the real web UI does, with the token and without one, shows each
// step in the page and POSTs the results to /sim/report. Every path is relative to the
// server, so the page works through whatever proxy serves it.
'use strict';
(function () {
  const config = document.body.dataset;
  const list = document.getElementById('steps');
  const summary = document.getElementById('summary');
  const images = document.getElementById('images');
  const steps = [];

  function record(name, ok, detail) {
    steps.push({ name: name, ok: ok, detail: String(detail) });
    const item = document.createElement('li');
    item.className = ok ? 'ok' : 'fail';
    item.textContent = (ok ? '\u2714 ' : '\u2718 ') + name + ': ' + detail;
    list.appendChild(item);
  }

  async function step(name, run) {
    try {
      record(name, true, await run());
    } catch (error) {
      record(name, false, error && error.message ? error.message : error);
    }
  }

  async function expectJson(path, init) {
    const response = await fetch(path, init);
    if (response.status !== 200) {
      const text = (await response.text()).slice(0, 200);
      throw new Error(path + ' answered ' + response.status + ' ' + text);
    }
    return response.json();
  }

  function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise(function (resolve, reject) {
      timer = setTimeout(function () {
        reject(new Error(what + ' did not come within ' + ms + ' ms'));
      }, ms);
    });
    return Promise.race([promise, timeout]).finally(function () {
      clearTimeout(timer);
    });
  }

  async function showImage(src, label) {
    const img = document.createElement('img');
    img.alt = label;
    img.src = src;
    images.appendChild(img);
    await withTimeout(img.decode(), 10000, label);
    if (!(img.naturalWidth > 0)) {
      throw new Error(label + ' has no width');
    }
    return img.naturalWidth + 'x' + img.naturalHeight + ' px';
  }

  function randomState() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, function (b) {
      return b.toString(16).padStart(2, '0');
    }).join('');
  }

  function login(user, password) {
    sessionStorage.setItem('sim-login', user + ':' + password);
    const state = randomState();
    sessionStorage.setItem('sim-state', state);
    const query = new URLSearchParams({
      response_type: 'token',
      client_id: config.clientId,
      redirect_uri: '/sim/webui',
      scope: '0-0-0-0-0 ' + config.serviceId,
      state: state,
    });
    location.assign('/hub/api/rest/oauth2/auth?' + query.toString());
  }

  function firstEvent(source) {
    return new Promise(function (resolve, reject) {
      source.addEventListener('subscribed', function (event) {
        resolve(event.data);
      });
      source.addEventListener('error', function () {
        if (source.readyState === EventSource.CLOSED) {
          reject(new Error('the event stream was refused'));
        }
      });
    });
  }

  async function run(token) {
    const bearer = { Authorization: 'Bearer ' + token };
    let userId = null;
    await step('hub-settings', async function () {
      const body = await expectJson('/hub/api/rest/settings/public?fields=id');
      return 'Hub is up (settings ' + body.id + ')';
    });
    await step('config', async function () {
      const body = await expectJson('/api/config?fields=ring(url,serviceId),version');
      return 'YouTrack ' + body.version + ', Hub at ' + body.ring.url;
    });
    await step('youtrack-me', async function () {
      const body = await expectJson('/api/users/me?fields=id,login', { headers: bearer });
      userId = body.id;
      return 'YouTrack knows ' + body.login;
    });
    await step('hub-me', async function () {
      const headers = Object.assign({ 'Hub-API-Version': '2' }, bearer);
      const body = await expectJson('/hub/api/rest/users/me?fields=id,login', { headers: headers });
      userId = body.id;
      return 'Hub knows ' + body.login;
    });
    await step('sse', async function () {
      const path = '/api/agiles/' + config.agile + '/sprints/' + config.sprint +
        '/sseSubscription?fields=ticket';
      const subscription = await expectJson(path, { method: 'POST', headers: bearer });
      const source = new EventSource('/api/eventSourceBus?ticket=' +
        encodeURIComponent(subscription.ticket) + '&fields=id');
      try {
        const data = await withTimeout(firstEvent(source), 10000, 'the first event');
        return 'first event: ' + data.slice(0, 80);
      } finally {
        source.close();
      }
    });
    await step('avatar', async function () {
      if (!userId) {
        throw new Error('no user id: users/me failed');
      }
      const src = '/hub/api/rest/avatar/' + encodeURIComponent(userId) + '?size=32&dpr=2';
      return 'avatar ' + await showImage(src, 'avatar');
    });
    await step('attachment', async function () {
      const path = '/api/issues/' + config.issue + '/attachments?fields=id,name,url,thumbnailURL';
      const attachments = await expectJson(path, { headers: bearer });
      if (!attachments.length) {
        throw new Error('no attachment');
      }
      const first = attachments[0];
      return first.name + ' ' + await showImage(first.url, first.name);
    });
  }

  async function report() {
    const failed = steps.filter(function (s) { return !s.ok; }).length;
    const ok = steps.length > 0 && failed === 0;
    summary.textContent = ok ? 'All ' + steps.length + ' steps passed'
      : failed + ' of ' + steps.length + ' steps failed';
    summary.className = ok ? 'ok' : 'fail';
    // The protocol the page itself came over: "h2" or "http/1.1".
    const navigation = performance.getEntriesByType('navigation')[0];
    const protocol = navigation ? navigation.nextHopProtocol : '';
    try {
      await fetch('/sim/report', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          ok: ok, steps: steps, protocol: protocol, userAgent: navigator.userAgent,
        }),
      });
    } finally {
      document.body.dataset.done = ok ? 'ok' : 'fail';
    }
  }

  async function main() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    if (fragment.has('access_token') || fragment.has('error')) {
      history.replaceState(null, '', location.pathname);
      const expected = sessionStorage.getItem('sim-state');
      sessionStorage.removeItem('sim-state');
      if (fragment.has('error')) {
        record('login', false, 'Hub answered ' + fragment.get('error'));
      } else if (expected && fragment.get('state') !== expected) {
        record('login', false, 'the state came back changed');
      } else {
        summary.textContent = 'Logged in; running the steps\u2026';
        await run(fragment.get('access_token'));
      }
      await report();
    } else if (query.has('user') && query.has('password')) {
      summary.textContent = 'Logging in\u2026';
      login(query.get('user'), query.get('password'));
    } else {
      summary.textContent = 'Open this page with ?user=alice&password=alice to run the steps.';
    }
  }

  main();
})();
