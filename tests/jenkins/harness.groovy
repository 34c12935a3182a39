// Runs a vars/*.groovy step outside Jenkins: every step it calls is a stub that records its
// arguments; a step without a stub fails loudly (MissingMethodException). Prints the record
// as JSON. Usage: groovy harness.groovy VARS_FILE SCENARIO
import groovy.json.JsonOutput

class StepFailed extends RuntimeException {
    StepFailed(String message) { super(message) }
}

// What a password input returns on current Jenkins (hudson.util.Secret): toString() is
// deprecated there, so the stub records every call of it.
class FakeSecret {
    String plain
    List calls
    String getPlainText() { plain }
    String toString() { calls << [step: 'Secret.toString']; plain }
}

def (String varsFile, String scenario) = args
List calls = []
Map currentEnv = [:]
String sealed = 'xtoks1.SEALED-TOKEN-VALUE.chk'
String request = 'xtokr1.REQUEST-CODE.chk'
String ticket = 'xtokt1.RUN-TICKET.chk'

Binding binding = new Binding()
binding.setVariable('env', [BUILD_URL: 'https://ci.example/job/deploy/42/'])
binding.setVariable('sh', { Map m ->
    calls << [step: 'sh', script: m.script, label: m.label, env: new LinkedHashMap(currentEnv)]
    return m.returnStdout ? request + '\n' + ticket + '\n' : 0
})
binding.setVariable('echo', { String text -> calls << [step: 'echo', text: text] })
binding.setVariable('error', { String message ->
    calls << [step: 'error', message: message]
    throw new StepFailed(message)
})
binding.setVariable('password', { Map m -> [kind: 'password'] + m })
binding.setVariable('input', { Map m ->
    calls << [step: 'input', id: m.id, message: m.message, submitter: m.submitter,
              parameters: m.parameters]
    if (scenario == 'abort') {
        throw new InterruptedException('aborted by user')  // what an aborted input raises
    }
    return new FakeSecret(plain: sealed, calls: calls)
})
binding.setVariable('withEnv', { List vars, Closure body ->
    calls << [step: 'withEnv', vars: vars.collect { it.toString() }]
    Map saved = new LinkedHashMap(currentEnv)
    vars.each { String kv -> def (k, v) = kv.split('=', 2); currentEnv[k] = v }
    try { body.call() } finally { currentEnv.clear(); currentEnv.putAll(saved) }
})

binding.setVariable('string', { Map m -> [kind: 'string'] + m })
binding.setVariable('withCredentials', { List bindings, Closure body ->
    calls << [step: 'withCredentials', bindings: bindings]
    Map saved = new LinkedHashMap(currentEnv)
    bindings.each { Map b -> currentEnv[b.variable] = "value-of-${b.credentialsId}".toString() }
    try { body.call() } finally { currentEnv.clear(); currentEnv.putAll(saved) }
})

def step = new GroovyShell(binding).parse(new File(varsFile))
def result = null
try {
    switch (scenario) {
        case 'approve':
        case 'abort':
            result = step.call(secrets: [DB_PASS: 'prod/db', API: 'prod/api#token'],
                               duration: '20m', submitter: 'ops',
                               role: 'arn:aws:iam::123456789012:role/xtok-ci') {
                './deploy.sh --env prod'
            }
            break
        case 'relay':
            result = step.call(relay: 'https://relay.example.com', secrets: [DB_PASS: 'prod/db'],
                               role: 'arn:aws:iam::123456789012:role/xtok-ci',
                               oidcCredentialsId: 'xtok-id-token') { './deploy.sh' }
            break
        case 'relay-unproven':
            result = step.call(relay: 'https://relay.example.com', secrets: [DB_PASS: 'prod/db'],
                               relayKeyCredentialsId: 'xtok-relay-key') { './deploy.sh' }
            break
        case 'bad-secret':
            result = step.call(secrets: ['DB PASS': 'prod/db; rm -rf /']) { 'true' }
            break
        case 'no-command':
            result = step.call(secrets: [DB: 'prod/db'])
            break
        case 'no-submitter':
            result = step.call(secrets: [DB: 'prod/db']) { 'true' }
            break
        case 'legacy':
            result = step.call()
            break
        default:
            throw new IllegalArgumentException("unknown scenario ${scenario}")
    }
} catch (StepFailed failed) {
    calls << [step: 'failed', message: failed.message]
}
println JsonOutput.toJson([calls: calls, result: result?.toString(), sealed: sealed,
                           request: request, ticket: ticket])
