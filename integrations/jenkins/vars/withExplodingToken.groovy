// withExplodingToken: run one command with secrets that a human approves for this build only.
//
//   withExplodingToken(secrets: [DB_PASS: 'prod/db'], duration: '15m', submitter: 'ops',
//                      role: 'arn:aws:iam::123456789012:role/xtok-ci') { './deploy.sh' }
//
// 1. `xtok request` keeps a one-time key on this agent and prints a request code and this
//    run's ticket (kept in this step's memory, never shown).
// 2. The build waits at an `input` step that shows the code and the `xtok approve` line.
//    `submitter` is required: whoever answers chooses the credentials the command runs with.
// 3. The approver's sealed token opens only here, once, with the ticket: `xtok run --sealed`
//    fetches the secrets and runs the command with them, its output masked.
// Token and ticket reach xtok through the environment; never through a `sh` script text.
//
// With a relay there is no input step and the approver needs no Jenkins API token:
//
//   withExplodingToken(relay: 'https://relay.example.com', secrets: [DB_PASS: 'prod/db'],
//                      oidcCredentialsId: 'xtok-id-token') { './deploy.sh' }
//
// One `xtok run --relay` process requests, waits for the approver (`xtok approve --relay`),
// opens the sealed token and runs the command: the one-time key never touches disk. The
// build's ID token (OpenID Connect Provider plugin credential, audience `xtok`) proves the
// request; without it, a relay key (`relayKeyCredentialsId`) admits it, unproven.

def call(Map args = [:], Closure body = null) {
    Map secrets = args.secrets ?: [:]
    if (!secrets) {
        error('withExplodingToken: secrets: [ENV: \'secret-name\', ...] is required')
    }
    String command = args.command ?: (body != null ? body.call() : null)
    if (!command) {
        error('withExplodingToken: give the command to run, e.g. { \'./deploy.sh\' }')
    }
    List<String> words = ['xtok', 'request']
    secrets.each { name, secret ->
        if (!(name ==~ /[A-Za-z_][A-Za-z0-9_]*/) || !(secret ==~ /[A-Za-z0-9\/_+=.@#-]+/)) {
            error("withExplodingToken: invalid secret entry ${name}")
        }
        words += ['--secret', "${name}=${secret}".toString()]
    }
    words += ['--duration', (args.duration ?: '15m').toString()]
    if (args.role) {
        words += ['--role', args.role.toString()]
    }
    if (args.relay) {
        runViaRelay(args, words.drop(2), command)
        return
    }
    if (!args.submitter) {
        error('withExplodingToken: submitter: \'user-or-group\' is required (who may answer the input step)')
    }
    List<String> lines = sh(script: shellWords(words), returnStdout: true,
                            label: 'xtok request').trim().readLines()
    if (lines.size() != 2 || !lines[0].startsWith('xtokr') || !lines[1].startsWith('xtokt')) {
        error('withExplodingToken: `xtok request` did not print a request code and a ticket')
    }
    String request = lines[0].trim()
    String ticket = lines[1].trim()
    // Without a Jenkins URL configured there is no BUILD_URL: then the approver pastes the token.
    List<String> approve = ['xtok', 'approve', request]
    if (env.BUILD_URL) {
        approve += ['--jenkins', env.BUILD_URL.toString()]
    }
    String approveLine = shellWords(approve)
    def token
    try {
        token = input(
            id: 'XtokToken',
            message: "Approve this run's secrets (${secrets.values().join(', ')}).\n\n" +
                "Request code:\n${request}\n\nApprover, run:\n${approveLine}\n\n" +
                'or paste the sealed token that `xtok approve` prints.',
            ok: 'Run',
            submitter: args.submitter,
            parameters: [password(name: 'XTOK_TOKEN',
                                  description: 'The sealed token from xtok approve')])
    } catch (err) {
        error('withExplodingToken: approval aborted or timed out; the command was not run')
    }
    // On current Jenkins a password parameter is a hudson.util.Secret: read it explicitly
    // (interpolation calls its deprecated toString()).
    String sealed = token instanceof String ? token : token.getPlainText()
    withEnv(["XTOK_TOKEN=${sealed}", "XTOK_TICKET=${ticket}"]) {
        sh(script: shellWords(['xtok', 'run', '--sealed', '--token-env', 'XTOK_TOKEN', '--']) +
               ' ' + command,
           label: 'xtok run --sealed')
    }
}

private void runViaRelay(Map args, List<String> options, String command) {
    String script = shellWords(['xtok', 'run', '--relay', args.relay.toString()] + options +
                               ['--']) + ' ' + command
    List bindings = []
    if (args.oidcCredentialsId) {
        bindings << string(credentialsId: args.oidcCredentialsId, variable: 'XTOK_OIDC_TOKEN')
    }
    if (args.relayKeyCredentialsId) {
        bindings << string(credentialsId: args.relayKeyCredentialsId, variable: 'XTOK_RELAY_KEY')
    }
    Closure run = { sh(script: script, label: 'xtok run --relay') }
    if (bindings) {
        withCredentials(bindings, run)
    } else {
        run()
    }
}

// Each word single-quoted for sh, so no value is ever parsed by the shell.
private static String shellWords(List<String> words) {
    List<String> quoted = []
    for (String word : words) {
        quoted.add("'" + word.replace("'", "'\"'\"'") + "'")
    }
    return quoted.join(' ')
}
