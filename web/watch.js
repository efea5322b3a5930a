// The /watch page: the fans' player (web/player/player.js) for ?match=ID, full width. The
// viewer token comes from ?token=, this tab's sessionStorage or, when `serve --dev-tokens` is
// on, /dev-token. `?angle=` picks the first angle, `&pin=` pins the match key, `&telemetry=off`
// keeps this viewer's player from reporting (web/player/telemetry.js). The player is
// window.swarmpack (its `stats` are CONTRACT.md's counters).
import { mount } from '/.player/player.js';
import { MATCH_ID, getToken } from '/.player/shared.js';

const params = new URLSearchParams(location.search);
const match = params.get('match');
const element = document.querySelector('#player');
if (match && MATCH_ID.test(match)) {
  document.title = `${match} · swarmpack`;
  const { token } = await getToken(match);
  const telemetry = params.get('telemetry') !== 'off';
  window.swarmpack = mount(element, { match, token, angle: params.get('angle'), pin: params.get('pin'), telemetry });
} else {
  element.textContent = 'Add ?match=ID to the address (a-z, 0-9, "-" and "_", up to 32 characters).';
}
