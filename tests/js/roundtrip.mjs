#!/usr/bin/env node
// The kitsu JSON:API client (npm) against a running pushreg, as a JavaScript app would use it.
//
//   ROUNDTRIP_BASE_URL=http://127.0.0.1:8000 ROUNDTRIP_SESSION_ID=… ROUNDTRIP_USER_ID=… \
//   ROUNDTRIP_TOKEN=<hex> node roundtrip.mjs        (or the four as arguments, in that order)
//
// The session's user must have registered apple_device_tokens: the newest listed is patched,
// the oldest deleted. ROUNDTRIP_TOKEN is a token not registered yet, created by POST.
//
// Prints one JSON line per step with the server's answer, success or error (the caller decides
// what was expected). Exits 1 with a message on stderr when the run cannot go on: anything
// that is not an HTTP answer, or a step the later ones depend on failing.

import Kitsu from 'kitsu'

const SETTINGS = ['BASE_URL', 'SESSION_ID', 'USER_ID', 'TOKEN']
const NEW_TIME_ZONE = 'Europe/Paris'
const NEW_BUNDLE_VERSION = '3.2.0'

class Unexpected extends Error {}

function settings () {
  const given = process.argv.slice(2)
  const values = Object.fromEntries(SETTINGS.map((name, i) =>
    [name, given[i] ?? process.env[`ROUNDTRIP_${name}`]]))
  const missing = SETTINGS.filter(name => !values[name])
  if (missing.length) {
    throw new Unexpected(`missing ${missing.map(name => `ROUNDTRIP_${name}`).join(', ')}`)
  }
  return values
}

// Types, URLs and attribute names exactly as the server spells them: snake_case, plural as
// given. kitsu's defaults would send type "appleDeviceTokens" and pluralise or kebab-case paths.
function client (baseUrl, headers = {}) {
  const api = new Kitsu({
    baseURL: `${baseUrl}/api`,
    headers,
    camelCaseTypes: false,
    resourceCase: 'none',
    pluralize: false,
    timeout: 10000,
    axiosOptions: { proxy: false }
  })
  api.interceptors.request.use(config => {
    api.lastSent = config.data
    return config
  })
  return api
}

// The server's answer to one call: what kitsu returned, or the HTTP error it threw.
async function answer (call) {
  try {
    const response = await call()
    return { ok: true, status: response.status, response }
  } catch (error) {
    if (!error.response) throw error
    return {
      ok: false,
      status: error.response.status,
      headers: error.response.headers,
      errors: (error.errors ?? []).map(({ status, code, detail, source }) =>
        ({ status, code, detail, source }))
    }
  }
}

function required (result, what) {
  if (!result.ok) {
    throw new Unexpected(`${what}: HTTP ${result.status} ${JSON.stringify(result.errors)}`)
  }
  return result.response
}

// What a request document held, by member name: enough to tell what kitsu sent back.
function shape (document) {
  const data = document?.data ?? {}
  return {
    members: Object.keys(data).sort(),
    attributes: Object.keys(data.attributes ?? {}).sort(),
    relationships: Object.fromEntries(Object.entries(data.relationships ?? {})
      .map(([name, relationship]) => [name, Object.keys(relationship).sort()]))
  }
}

function report (step, result, extra = {}) {
  const { status, errors } = result
  console.log(JSON.stringify({ step, status, ...(errors ? { errors } : {}), ...extra }))
}

async function allPages (api, first) {
  const tokens = []
  let response = first
  let pages = 0
  while (true) {
    pages += 1
    tokens.push(...response.data)
    const next = response.links?.next
    if (!next) return { tokens, pages }
    // links.next is an absolute URL with the cursor; a raw request follows it as given
    response = required(await answer(() => api.request({ url: next })), `GET ${next}`)
  }
}

async function fetchWithIncludes (api, userId) {
  const user = required(await answer(() => api.get(`users/${userId}`,
    { params: { include: 'devices' } })), 'GET users/<id>?include=devices')
  const listed = required(await answer(() => api.get('apple_device_tokens',
    { params: { include: 'user', page: { size: 1 } } })),
  'GET apple_device_tokens?include=user&page[size]=1')
  const { tokens, pages } = await allPages(api, listed)
  if (!tokens.length) throw new Unexpected('the user has no apple_device_tokens to work on')
  const devices = user.data.devices?.data ?? []
  report('fetch', listed, {
    user: { type: user.data.type, id: user.data.id },
    devices: devices.map(device => device.id),
    devices_included: devices.every(device => device.bundle_id !== undefined),
    tokens_seen: tokens.length,
    tokens: tokens.map(token => token.id),
    pages,
    token_users_included: tokens.map(token => token.user?.data?.time_zone !== undefined)
  })
  return tokens
}

async function sparseFieldsets (api, userId) {
  const result = await answer(() => api.get(`users/${userId}`,
    { params: { fields: { users: 'username,time_zone' } } }))
  report('sparse', result, result.ok ? { members: Object.keys(result.response.data).sort() } : {})
}

async function patchBackWhole (step, api, type, resource, changes) {
  Object.assign(resource, changes)
  const result = await answer(() => api.patch(type, resource))
  const changed = result.ok
    ? Object.fromEntries(Object.keys(changes).map(name => [name, result.response.data[name]]))
    : {}
  report(step, result, { sent: shape(api.lastSent), answered: changed })
}

async function patchUser (api, userId) {
  const user = required(await answer(() => api.get(`users/${userId}`)), 'GET users/<id>')
  await patchBackWhole('patch_user', api, 'users', user.data, { time_zone: NEW_TIME_ZONE })
}

async function patchToken (api, tokenId) {
  const token = required(await answer(() => api.get(`apple_device_tokens/${tokenId}`)),
    'GET apple_device_tokens/<token>')
  await patchBackWhole('patch_token', api, 'apple_device_tokens', token.data,
    { bundle_version: NEW_BUNDLE_VERSION })
}

async function createToken (api, tokenId) {
  const result = await answer(() => api.create('apple_device_tokens', {
    id: tokenId,
    is_invalidated: false,
    bundle_version: '3.1.23',
    build_number: '839',
    is_production: true,
    bundle_id: 'TTYL.Inc.Poparazzi',
    is_voip: false
  }))
  report('create_token', result, {
    sent: shape(api.lastSent),
    ...(result.ok ? { id_matches: result.response.data?.id === tokenId } : {})
  })
}

async function deleteToken (api, tokenId) {
  const deleted = await answer(() => api.delete('apple_device_tokens', tokenId))
  const fetched = await answer(() => api.get(`apple_device_tokens/${tokenId}`))
  report('delete_token', deleted, {
    token: tokenId,
    then: { status: fetched.status, codes: (fetched.errors ?? []).map(error => error.code) }
  })
}

async function withoutAuthorization (baseUrl, userId) {
  const result = await answer(() => client(baseUrl).get(`users/${userId}`))
  report('unauthorized', result, {
    codes: (result.errors ?? []).map(error => error.code),
    www_authenticate: result.headers?.['www-authenticate'] ?? null
  })
}

async function main () {
  const { BASE_URL: baseUrl, SESSION_ID: sessionId, USER_ID: userId, TOKEN: newToken } =
    settings()
  const api = client(baseUrl, { Authorization: `Bearer ${sessionId}` })
  const tokens = await fetchWithIncludes(api, userId)
  await sparseFieldsets(api, userId)
  await patchUser(api, userId)
  await patchToken(api, tokens.at(-1).id)
  await createToken(api, newToken)
  await deleteToken(api, tokens[0].id)
  await withoutAuthorization(baseUrl, userId)
}

main().catch(error => {
  const what = error instanceof Unexpected ? error.message : (error.stack ?? String(error))
  console.error(`roundtrip.mjs stopped: ${what}`)
  process.exit(1)
})
