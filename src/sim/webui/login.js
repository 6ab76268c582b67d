// The simulated Hub's login page: when the page that sent the browser here left
// `user:password` in sessionStorage['sim-login'], fill the form and submit it. The entry is
// removed first, so a wrong password stops at the form instead of looping.
'use strict';
(function () {
  const saved = sessionStorage.getItem('sim-login');
  if (!saved) {
    return;
  }
  sessionStorage.removeItem('sim-login');
  const colon = saved.indexOf(':');
  const form = document.getElementById('login');
  if (colon < 0 || !form) {
    return;
  }
  form.elements.username.value = saved.slice(0, colon);
  form.elements.password.value = saved.slice(colon + 1);
  form.submit();
})();
