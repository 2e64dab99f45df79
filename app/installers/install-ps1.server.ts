// The Windows installer served at /install.ps1 (see install-sh.server.ts for
// why it is text here). PowerShell's escape character is the backquote, which
// this script never uses, so String.raw needs no escaping; the console's origin
// replaces @@CAISEY_SERVER@@. It must not call exit: the one-liner runs it as a
// script block inside the administrator's own PowerShell session.
export const INSTALL_PS1 = String.raw`# Caisey endpoint runtime installer for Windows, served by the Caisey console.
# In PowerShell started as Administrator:
#   & ([scriptblock]::Create((irm @@CAISEY_SERVER@@/install.ps1))) -Token cae_...
# Uninstall (keeps the identity and journal unless -Purge):
#   & ([scriptblock]::Create((irm @@CAISEY_SERVER@@/install.ps1))) -Uninstall [-Purge]
#
# Parameters:
#   -Token TOKEN      enrollment token from the client's page in the console
#                     (not needed to reinstall or upgrade an enrolled machine)
#   -Force            enroll again although this machine is enrolled (it becomes a new endpoint)
#   -Hostname NAME    the name the console shows instead of this computer's name
#   -Proxy URL        HTTP(S) proxy for the runtime's connections (saved in config.json)
#   -NoProxy HOSTS    hosts that bypass that proxy (NO_PROXY syntax)
#   -Version V        install runtime version V instead of the latest
#   -Server URL       use another console than the one this script came from
#   -Uninstall        stop and remove the service and the program files
#   -Purge            with -Uninstall: also delete the state (identity, journal, outbox)
#   -DryRun           download and verify, print the plan, change nothing
param(
  [string]$Token,
  [switch]$Force,
  [string]$Hostname,
  [string]$Proxy,
  [string]$NoProxy,
  [string]$Version,
  [string]$Server = '@@CAISEY_SERVER@@',
  [switch]$Uninstall,
  [switch]$Purge,
  [switch]$DryRun
)
Set-StrictMode -Version 2
$ErrorActionPreference = 'Stop'
# Invoke-WebRequest's progress bar slows big downloads down many times over in Windows PowerShell 5.1.
$ProgressPreference = 'SilentlyContinue'

$ServiceName = 'caisey-runtime'
$ProgramDir = Join-Path $env:ProgramFiles 'Caisey'
$StateDir = Join-Path $env:ProgramData 'Caisey'
$Exe = Join-Path $ProgramDir 'caisey-runtime.exe'
$Wrapper = Join-Path $ProgramDir 'caisey-service.exe'
# Well-known SIDs, so the ACL is right whatever the Windows display language.
$SystemSid = '*S-1-5-18'
$AdministratorsSid = '*S-1-5-32-544'

function Say([string]$Message) { Write-Host "caisey: $Message" }
function Fail([string]$Message) { throw "caisey: error: $Message" }

function Get-VerifiedDownload([string]$Url, [string]$OutFile) {
  $options = @{ Uri = $Url; OutFile = $OutFile; PassThru = $true; UseBasicParsing = $true }
  if ($Proxy) { $options.Proxy = $Proxy }
  try {
    $response = Invoke-WebRequest @options
  } catch {
    Fail "the download of $Url failed: $($_.Exception.Message)"
  }
  $expected = [string]($response.Headers['X-Caisey-Sha256'] | Select-Object -First 1)
  if ($expected -notmatch '^[0-9a-fA-F]{64}$') {
    Remove-Item -Force -LiteralPath $OutFile -ErrorAction SilentlyContinue
    Fail "the console did not say the SHA-256 of $Url (no X-Caisey-Sha256 header); refusing to install it"
  }
  $actual = (Get-FileHash -Algorithm SHA256 -LiteralPath $OutFile).Hash.ToLowerInvariant()
  if ($actual -ne $expected.ToLowerInvariant()) {
    Remove-Item -Force -LiteralPath $OutFile -ErrorAction SilentlyContinue
    Fail "SHA-256 mismatch for $($Url): the console published $expected but the download is $actual; nothing was installed"
  }
  Say "verified SHA-256 $actual ($Url)"
  return $response
}

function Wait-ServiceGone {
  for ($i = 0; $i -lt 30; $i++) {
    if (-not (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) { return }
    Start-Sleep -Seconds 1
  }
  Fail "the $ServiceName service is still registered; reboot and run the uninstall again"
}

function Remove-CaiseyService {
  $service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
  if (-not $service) { return }
  if ($service.Status -ne 'Stopped') { Stop-Service -Name $ServiceName -Force }
  if (Test-Path -LiteralPath $Wrapper) { & $Wrapper uninstall | Out-Host } else { & sc.exe delete $ServiceName | Out-Host }
  Wait-ServiceGone
}

# The service definition WinSW reads from next to caisey-service.exe. Runs as
# LocalSystem (WinSW's default): technicians run administrative commands.
$WrapperConfig = @'
<service>
  <id>caisey-runtime</id>
  <name>Caisey runtime</name>
  <description>Caisey endpoint runtime: lets your IT provider's technicians run commands on this computer, with your approval where required.</description>
  <executable>%BASE%\caisey-runtime.exe</executable>
  <arguments>run --state-dir "@@STATE_DIR@@"</arguments>
  <startmode>Automatic</startmode>
  <env name="CAISEY_RUNTIME_SERVICE" value="1"/>
  <onfailure action="restart" delay="10 sec"/>
  <resetfailure>1 hour</resetfailure>
  <stopparentprocessfirst>true</stopparentprocessfirst>
  <stoptimeout>30 sec</stoptimeout>
  <logpath>@@STATE_DIR@@\logs</logpath>
  <log mode="roll-by-size">
    <sizeThreshold>10240</sizeThreshold>
    <keepFiles>5</keepFiles>
  </log>
</service>
'@

# WinSW 1.x targets .NET 2; this lets it run on the .NET 4 every supported Windows has.
$WrapperRuntimeConfig = @'
<configuration>
  <startup>
    <supportedRuntime version="v4.0" />
    <supportedRuntime version="v2.0.50727" />
  </startup>
</configuration>
'@

$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
$elevated = $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
if (-not $elevated -and -not $DryRun) { Fail 'run this in a PowerShell window started with "Run as administrator"' }
$Server = $Server.TrimEnd('/')
if ($Server -notmatch '^https?://') { Fail "-Server must be an http(s) URL, got '$Server'" }
if ($Version -and $Version -notmatch '^\d+\.\d+\.\d+') { Fail "-Version must look like 1.2.3, got '$Version'" }

if ($Uninstall) {
  if ($DryRun) {
    Say "would stop and remove the $ServiceName service and $ProgramDir"
    if ($Purge) { Say "would delete $StateDir" } else { Say "would keep $StateDir" }
    return
  }
  Remove-CaiseyService
  Remove-Item -Recurse -Force -LiteralPath $ProgramDir -ErrorAction SilentlyContinue
  if ($Purge) {
    Remove-Item -Recurse -Force -LiteralPath $StateDir -ErrorAction SilentlyContinue
    Say "removed the service, $ProgramDir and $StateDir"
  } else {
    Say "removed the service and $ProgramDir; kept $StateDir (identity, journal, undelivered results): add -Purge to delete it"
  }
  Say 'decommission the endpoint in the console to retire it there'
  return
}

if (-not [Environment]::Is64BitOperatingSystem) { Fail 'the Caisey runtime needs 64-bit Windows' }
# TLS 1.2 for Windows PowerShell 5.1 on older .NET defaults.
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$work = Join-Path ([IO.Path]::GetTempPath()) ('caisey-' + [guid]::NewGuid().ToString('N'))
New-Item -ItemType Directory -Path $work | Out-Null
try {
  $url = "$Server/runtime/download/windows-x64"
  if ($Version) { $url = "$url" + "?version=$Version" }
  Say "downloading the windows-x64 runtime from $url"
  $download = Get-VerifiedDownload $url (Join-Path $work 'caisey-runtime.exe')
  Get-VerifiedDownload "$Server/runtime/service-wrapper/windows-x64" (Join-Path $work 'caisey-service.exe') | Out-Null
  # No 2>&1: with ErrorActionPreference Stop, Windows PowerShell 5.1 turns a native program's stderr into a terminating error.
  $ran = & (Join-Path $work 'caisey-runtime.exe') --version
  if ($LASTEXITCODE -ne 0) { Fail "the downloaded runtime does not run on this computer: $ran" }
  $identityFile = Join-Path $StateDir 'identity.json'
  $enrolled = (Test-Path -LiteralPath $identityFile) -and -not $Force

  if ($DryRun) {
    Say "dry run: would install $Exe (runtime $ran) and the service wrapper"
    if ($enrolled) { Say "dry run: would keep the enrollment in $StateDir" } else { Say "dry run: would enroll with $Server into $StateDir (SYSTEM and Administrators only)" }
    Say "dry run: would register and start the $ServiceName service"
    return
  }

  # A running service holds the executable open; stop it before replacing it.
  $service = Get-Service -Name $ServiceName -ErrorAction SilentlyContinue
  if ($service -and $service.Status -ne 'Stopped') { Stop-Service -Name $ServiceName -Force }
  New-Item -ItemType Directory -Force -Path $ProgramDir | Out-Null
  Copy-Item -Force -LiteralPath (Join-Path $work 'caisey-runtime.exe') -Destination $Exe
  Copy-Item -Force -LiteralPath (Join-Path $work 'caisey-service.exe') -Destination $Wrapper
  Set-Content -Encoding UTF8 -LiteralPath (Join-Path $ProgramDir 'caisey-service.xml') -Value $WrapperConfig.Replace('@@STATE_DIR@@', $StateDir)
  Set-Content -Encoding UTF8 -LiteralPath (Join-Path $ProgramDir 'caisey-service.exe.config') -Value $WrapperRuntimeConfig
  Say "installed $Exe"

  # The state holds the endpoint's credential: SYSTEM and Administrators only, nothing inherited.
  New-Item -ItemType Directory -Force -Path $StateDir | Out-Null
  & icacls.exe $StateDir /inheritance:r /grant:r "$($SystemSid):(OI)(CI)F" "$($AdministratorsSid):(OI)(CI)F" /Q | Out-Null
  if ($LASTEXITCODE -ne 0) { Fail "could not restrict the permissions of $StateDir (icacls exit $LASTEXITCODE)" }
  & icacls.exe $StateDir /setowner $AdministratorsSid /Q | Out-Null
  if ($LASTEXITCODE -ne 0) { Fail "could not set the owner of $StateDir (icacls exit $LASTEXITCODE)" }

  if ($enrolled) {
    Say "already enrolled ($identityFile): keeping that identity; add -Force with a new token to enroll as a new endpoint"
  } else {
    if (-not $Token) { Fail "-Token is required: create an enrollment token on the client's page in the console" }
    $enrollArgs = @('enroll', '--server', $Server, '--token', $Token, '--state-dir', $StateDir)
    if ($Force) { $enrollArgs += '--force' }
    if ($Hostname) { $enrollArgs += @('--hostname', $Hostname) }
    if ($Proxy) { $enrollArgs += @('--proxy', $Proxy) }
    if ($NoProxy) { $enrollArgs += @('--no-proxy', $NoProxy) }
    & $Exe @enrollArgs
    if ($LASTEXITCODE -ne 0) { Fail 'enrollment failed (see above); the program is installed, nothing else changed' }
  }

  if (-not (Get-Service -Name $ServiceName -ErrorAction SilentlyContinue)) {
    & $Wrapper install | Out-Host
    if ($LASTEXITCODE -ne 0) { Fail "could not register the $ServiceName service (WinSW exit $LASTEXITCODE)" }
  }
  # Also restart when the runtime stops with a non-zero exit code rather than crashing.
  & sc.exe failureflag $ServiceName 1 | Out-Null
  Start-Service -Name $ServiceName
  (Get-Service -Name $ServiceName).WaitForStatus('Running', [TimeSpan]::FromSeconds(30))
  Say 'the runtime service is running; it starts at boot and restarts if it stops'
  Say "done: this computer appears online in the console within a few seconds ($Server)"
} finally {
  Remove-Item -Recurse -Force -LiteralPath $work -ErrorAction SilentlyContinue
}
`;
